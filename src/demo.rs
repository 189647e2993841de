//! Demo data, loaded by `civicpay serve --demo`. Each module registers its loader in
//! [`LOADERS`]; a loader only inserts what is missing (`ON CONFLICT DO NOTHING`), so loading
//! twice, or over data someone has since edited, changes nothing.

use anyhow::Context;
use futures_util::future::BoxFuture;
use sqlx::{PgConnection, PgPool};

/// What demo loaders may need beyond the database: the keys the server runs with.
pub struct DemoContext {
    pub pin_pepper: Vec<u8>,
}

type Loader =
    for<'c> fn(&'c mut PgConnection, &'c DemoContext) -> BoxFuture<'c, anyhow::Result<()>>;

/// In dependency order: later loaders may refer to what earlier ones created.
static LOADERS: &[(&str, Loader)] = &[
    ("units", |c, _| Box::pin(crate::units::demo::load(c))),
    ("unit billers", |c, _| Box::pin(unit_billers(c))),
    ("accounts", |c, _| Box::pin(crate::accounts::demo::load(c))),
    ("wallets", |c, context| {
        Box::pin(crate::wallet::demo::load(c, &context.pin_pepper))
    }),
    ("merchants", |c, _| {
        Box::pin(crate::merchants::demo::load(c))
    }),
    ("bills", |c, _| Box::pin(crate::bills::demo::load(c))),
    ("procedures", |c, _| {
        Box::pin(crate::procedures::demo::load(c))
    }),
    ("counters", |c, _| Box::pin(crate::counters::demo::load(c))),
];

/// Every unit collects its dossier fees as a biller, made with the unit. The units cannot make
/// it themselves (bills sit above units), so their loader's units get theirs here.
async fn unit_billers(conn: &mut PgConnection) -> anyhow::Result<()> {
    crate::bills::fees::bill_for_every_unit(conn)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Loads every module's demo data in one transaction: all of it or none.
pub async fn load_all(pool: &PgPool, context: &DemoContext) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    // Two servers started with --demo at once take turns.
    crate::db::xact_lock(&mut tx, crate::db::LockSpace::Demo, "load").await?;
    for (name, load) in LOADERS {
        load(&mut tx, context)
            .await
            .with_context(|| format!("loading the {name} demo data"))?;
    }
    tx.commit().await?;
    tracing::info!(modules = LOADERS.len(), "demo data loaded");
    Ok(())
}
