//! Demo units: Huế, a centrally-run city at province level since 2025, with some of the wards
//! and communes it has had since the two-tier reform of 1 July 2025. Names are the real ones;
//! the commune codes are in the official 5-digit format but were not checked against the
//! national code list, so do not rely on them outside the demo.

use sqlx::PgConnection;

const HUE: &str = "46";

const COMMUNES: &[(&str, &str)] = &[
    ("19753", "Phường Phú Xuân"),
    ("19774", "Phường Thuận Hóa"),
    ("19777", "Phường Kim Long"),
    ("19789", "Phường Vỹ Dạ"),
    ("19792", "Phường An Cựu"),
    ("19813", "Phường Thủy Xuân"),
    ("19900", "Phường Hương An"),
    ("20023", "Phường Thuận An"),
    ("20107", "Xã Phú Vinh"),
    ("20266", "Xã A Lưới 2"),
];

pub async fn load(conn: &mut PgConnection) -> anyhow::Result<()> {
    sqlx::query!(
        "INSERT INTO units (code, name, level) VALUES ($1, $2, 'province') ON CONFLICT DO NOTHING",
        HUE,
        "Thành phố Huế",
    )
    .execute(&mut *conn)
    .await?;
    for (code, name) in COMMUNES {
        sqlx::query!(
            "INSERT INTO units (code, name, level, parent_code) VALUES ($1, $2, 'commune', $3)
             ON CONFLICT DO NOTHING",
            code,
            name,
            HUE,
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
