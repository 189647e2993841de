//! Demo catalogue: ten common procedures at commune and province level, with processing times
//! and fees as the national public-service portal listed them when this was written (codes
//! and amounts to be checked against the portal before real use; provinces may waive fees).

use sqlx::PgConnection;

use super::{FeeItem, FeeKind, FeeTiming, NewProcedure, RequiredDocument, save};
use crate::units::UnitLevel;

struct Demo {
    code: &'static str,
    name: &'static str,
    field: &'static str,
    level: UnitLevel,
    fully_online: bool,
    days: Option<i32>,
    hours: Option<i32>,
    /// (code, name, mandatory)
    documents: &'static [(&'static str, &'static str, bool)],
    /// (kind, name, amount)
    fees: &'static [(FeeKind, &'static str, i64)],
    timing: FeeTiming,
}

const ID_CARD: (&str, &str, bool) = ("giay_to_tuy_than", "Giấy tờ tùy thân (CCCD/hộ chiếu)", true);

const PROCEDURES: &[Demo] = &[
    Demo {
        code: "1.001193",
        name: "Đăng ký khai sinh",
        field: "Hộ tịch",
        level: UnitLevel::Commune,
        fully_online: true,
        days: None,
        hours: Some(8),
        documents: &[
            ("to_khai", "Tờ khai đăng ký khai sinh", true),
            ("giay_chung_sinh", "Giấy chứng sinh", true),
            ID_CARD,
        ],
        fees: &[],
        timing: FeeTiming::OnReceipt,
    },
    Demo {
        code: "1.000894",
        name: "Đăng ký kết hôn",
        field: "Hộ tịch",
        level: UnitLevel::Commune,
        fully_online: true,
        days: Some(5),
        hours: None,
        documents: &[
            ("to_khai", "Tờ khai đăng ký kết hôn", true),
            (
                "xac_nhan_hon_nhan",
                "Giấy xác nhận tình trạng hôn nhân (nếu cư trú nơi khác)",
                false,
            ),
            ID_CARD,
        ],
        fees: &[],
        timing: FeeTiming::OnReceipt,
    },
    Demo {
        code: "1.000656",
        name: "Đăng ký khai tử",
        field: "Hộ tịch",
        level: UnitLevel::Commune,
        fully_online: true,
        days: None,
        hours: Some(8),
        documents: &[
            ("to_khai", "Tờ khai đăng ký khai tử", true),
            ("giay_bao_tu", "Giấy báo tử hoặc giấy tờ thay thế", true),
        ],
        fees: &[],
        timing: FeeTiming::OnReceipt,
    },
    Demo {
        code: "2.000635",
        name: "Cấp bản sao trích lục hộ tịch",
        field: "Hộ tịch",
        level: UnitLevel::Commune,
        fully_online: true,
        days: None,
        hours: Some(8),
        documents: &[
            ("to_khai", "Tờ khai cấp bản sao trích lục hộ tịch", true),
            ID_CARD,
        ],
        fees: &[(FeeKind::Fee, "Phí cấp bản sao trích lục (mỗi bản)", 8_000)],
        timing: FeeTiming::OnReceipt,
    },
    Demo {
        code: "2.000815",
        name: "Chứng thực bản sao từ bản chính giấy tờ, văn bản",
        field: "Chứng thực",
        level: UnitLevel::Commune,
        fully_online: false,
        days: None,
        hours: Some(4),
        documents: &[("ban_chinh", "Bản chính giấy tờ cần chứng thực", true)],
        fees: &[(FeeKind::Fee, "Phí chứng thực bản sao (mỗi trang)", 2_000)],
        timing: FeeTiming::OnReceipt,
    },
    Demo {
        code: "1.010943",
        name: "Xác nhận thông tin về cư trú",
        field: "Đăng ký, quản lý cư trú",
        level: UnitLevel::Commune,
        fully_online: true,
        days: Some(3),
        hours: None,
        documents: &[("to_khai", "Tờ khai thay đổi thông tin cư trú (CT01)", true)],
        fees: &[],
        timing: FeeTiming::OnReceipt,
    },
    Demo {
        code: "1.009994",
        name: "Cấp giấy phép xây dựng nhà ở riêng lẻ",
        field: "Hoạt động xây dựng",
        level: UnitLevel::Commune,
        fully_online: false,
        days: Some(15),
        hours: None,
        documents: &[
            ("don_de_nghi", "Đơn đề nghị cấp giấy phép xây dựng", true),
            ("giay_to_dat", "Giấy tờ về quyền sử dụng đất", true),
            ("ban_ve", "Bản vẽ thiết kế xây dựng", true),
            (
                "cam_ket",
                "Bản cam kết bảo đảm an toàn công trình liền kề",
                false,
            ),
        ],
        fees: &[(
            FeeKind::Charge,
            "Lệ phí cấp giấy phép xây dựng nhà ở riêng lẻ",
            75_000,
        )],
        timing: FeeTiming::BeforeResult,
    },
    Demo {
        code: "2.000575",
        name: "Đăng ký thành lập hộ kinh doanh",
        field: "Thành lập và hoạt động của hộ kinh doanh",
        level: UnitLevel::Commune,
        fully_online: true,
        days: Some(3),
        hours: None,
        documents: &[
            ("giay_de_nghi", "Giấy đề nghị đăng ký hộ kinh doanh", true),
            ID_CARD,
        ],
        fees: &[(FeeKind::Charge, "Lệ phí đăng ký hộ kinh doanh", 100_000)],
        timing: FeeTiming::OnReceipt,
    },
    Demo {
        code: "2.001417",
        name: "Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam",
        field: "Lý lịch tư pháp",
        level: UnitLevel::Province,
        fully_online: true,
        days: Some(10),
        hours: None,
        documents: &[
            ("to_khai", "Tờ khai yêu cầu cấp Phiếu lý lịch tư pháp", true),
            ID_CARD,
        ],
        fees: &[(
            FeeKind::Fee,
            "Phí cung cấp thông tin lý lịch tư pháp",
            200_000,
        )],
        timing: FeeTiming::OnReceipt,
    },
    Demo {
        code: "2.001610",
        name: "Đăng ký thành lập doanh nghiệp tư nhân",
        field: "Thành lập và hoạt động doanh nghiệp",
        level: UnitLevel::Province,
        fully_online: true,
        days: Some(3),
        hours: None,
        documents: &[
            ("giay_de_nghi", "Giấy đề nghị đăng ký doanh nghiệp", true),
            ID_CARD,
        ],
        fees: &[(FeeKind::Charge, "Lệ phí đăng ký doanh nghiệp", 50_000)],
        timing: FeeTiming::BeforeResult,
    },
];

pub async fn load(conn: &mut PgConnection) -> anyhow::Result<()> {
    for demo in PROCEDURES {
        let exists = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM procedures WHERE code = $1) AS "exists!""#,
            demo.code
        )
        .fetch_one(&mut *conn)
        .await?;
        if exists {
            continue;
        }
        let procedure = NewProcedure {
            code: demo.code.into(),
            name: demo.name.into(),
            field: demo.field.into(),
            level: demo.level,
            fully_online: demo.fully_online,
            working_days: demo.days,
            working_hours: demo.hours,
            required_documents: demo
                .documents
                .iter()
                .map(|(code, name, mandatory)| RequiredDocument {
                    code: (*code).into(),
                    name: (*name).into(),
                    mandatory: *mandatory,
                })
                .collect(),
            fees: demo
                .fees
                .iter()
                .map(|(kind, name, amount)| FeeItem {
                    kind: *kind,
                    name: (*name).into(),
                    amount: *amount,
                })
                .collect(),
            fee_timing: demo.timing,
        };
        save(conn, &procedure)
            .await
            .map_err(|e| anyhow::anyhow!("demo procedure {}: {e}", demo.code))?;
    }
    Ok(())
}
