//! The command line: `civicpay serve [--demo]`, `civicpay migrate`, `civicpay openapi`.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::{Config, DatabaseConfig};

#[derive(Debug, Parser)]
#[command(
    name = "civicpay",
    version,
    about = "civicpay: the citizen super-app backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP API and its background workers (creates the database and applies
    /// migrations first).
    // Boxed: the whole configuration is far larger than the other commands' arguments.
    Serve(Box<ServeArgs>),
    /// Create the database if missing, apply pending migrations, and exit.
    Migrate(DatabaseConfig),
    /// The ledger: check its invariants, or fund a wallet in development.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Create an admin account (the first one cannot be made over the API).
    CreateAdmin(CreateAdminArgs),
    /// Print the OpenAPI document the code describes (the committed copy is
    /// openapi/openapi.json).
    Openapi,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Also load the demo data (idempotent: loading it again changes nothing).
    #[arg(long)]
    demo: bool,

    #[command(flatten)]
    config: Config,
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Prove the ledger's invariants; exits 1 naming the accounts when one fails.
    Verify(DatabaseConfig),
    /// Credit a verified wallet from the suspense account with an entry of kind `funding`
    /// (development only; refused when CIVICPAY_MODE=production).
    Fund(FundArgs),
}

#[derive(Debug, Args)]
struct FundArgs {
    /// The citizen's phone.
    #[arg(long)]
    phone: String,
    /// In đồng.
    #[arg(long)]
    amount: i64,
    #[arg(
        long,
        env = "CIVICPAY_MODE",
        value_name = "CIVICPAY_MODE",
        value_enum,
        default_value = "development"
    )]
    mode: crate::config::Mode,
    #[command(flatten)]
    database: DatabaseConfig,
}

#[derive(Debug, Args)]
struct CreateAdminArgs {
    /// The admin's phone (0912345678, 84912345678 or +84912345678).
    #[arg(long)]
    phone: String,
    /// At least 8 characters.
    #[arg(long)]
    password: String,
    #[arg(long, default_value = "Quản trị viên")]
    full_name: String,
    #[command(flatten)]
    database: DatabaseConfig,
}

pub async fn main() -> anyhow::Result<()> {
    // Every command may answer a database error (`create-admin` a phone already taken), and
    // the serve command's background tasks start before its state is built.
    crate::http::error::install_constraint_rules(crate::router::constraint_rules);
    let matches = Cli::command()
        .after_long_help(settings_summary())
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match cli.command {
        Command::Serve(args) => {
            crate::ops::logging::init(args.config.log_format);
            let ServeArgs { demo, config } = *args;
            crate::server::run(config, demo).await
        }
        Command::Migrate(database) => {
            crate::ops::logging::init(crate::config::LogFormat::Text);
            let pool = crate::db::connect(&database).await?;
            crate::db::migrate(&pool).await?;
            println!(
                "migrations applied to {}",
                crate::db::redacted(&database.database_url)
            );
            Ok(())
        }
        Command::Ledger(command) => {
            crate::ops::logging::init(crate::config::LogFormat::Text);
            ledger_command(command).await
        }
        Command::CreateAdmin(args) => {
            crate::ops::logging::init(crate::config::LogFormat::Text);
            create_admin(args).await
        }
        Command::Openapi => {
            print!("{}", crate::router::openapi_json());
            Ok(())
        }
    }
}

/// Every setting with its environment variable, for `civicpay --help`, generated from the
/// same definitions `serve --help` prints so the two never disagree.
fn settings_summary() -> String {
    let serve = ServeArgs::augment_args(clap::Command::new("serve"));
    let mut text = String::from("Settings (environment variable, or the flag of `serve`):\n");
    for arg in serve.get_arguments() {
        let Some(env) = arg.get_env() else { continue };
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let default = arg
            .get_default_values()
            .first()
            .map(|v| format!(" [default: {}]", v.to_string_lossy()))
            .unwrap_or_default();
        text.push_str(&format!(
            "  {}{default}\n      {help}\n",
            env.to_string_lossy()
        ));
    }
    text.push_str("\nRun `civicpay serve --help` for the flags and the accepted values.");
    text
}

async fn create_admin(args: CreateAdminArgs) -> anyhow::Result<()> {
    use crate::accounts::staff::{NewStaff, insert_staff};
    use crate::auth::{Role, password};
    use crate::domain::Phone;
    let phone = Phone::parse(&args.phone).ok_or_else(|| {
        anyhow::anyhow!("--phone {} is not a Vietnamese mobile number", args.phone)
    })?;
    if !password::fits(&args.password) {
        anyhow::bail!(
            "--password must be {} to {} characters",
            password::MIN_LEN,
            password::MAX_LEN
        );
    }
    let pool = crate::db::connect(&args.database).await?;
    crate::db::migrate(&pool).await?;
    let admin = NewStaff {
        phone: phone.clone(),
        password: args.password,
        full_name: args.full_name,
        role: Role::Admin,
        unit_code: None,
    };
    let id = insert_staff(&pool, &admin)
        .await
        .map_err(|error| match error.code() {
            crate::http::ErrorCode::PhoneTaken => anyhow::anyhow!("{phone} already has an account"),
            code => anyhow::anyhow!("creating the admin failed: {}", code.as_str()),
        })?;
    println!("admin {phone} created with id {id}");
    Ok(())
}

async fn ledger_command(command: LedgerCommand) -> anyhow::Result<()> {
    match command {
        LedgerCommand::Verify(database) => {
            let pool = crate::db::connect(&database).await?;
            crate::db::migrate(&pool).await?;
            let report = crate::ledger::verify::verify(&pool).await?;
            println!(
                "{} entries and {} accounts checked",
                report.entries_checked, report.accounts_checked
            );
            for failure in &report.failures {
                println!("FAIL {}: {}", failure.id, failure.problem);
            }
            if !report.ok {
                anyhow::bail!("the ledger breaks {} invariant(s)", report.failures.len());
            }
            println!("ledger ok");
            Ok(())
        }
        LedgerCommand::Fund(args) => {
            if args.mode == crate::config::Mode::Production {
                anyhow::bail!("ledger fund is refused with CIVICPAY_MODE=production");
            }
            let phone = crate::domain::Phone::parse(&args.phone).ok_or_else(|| {
                anyhow::anyhow!("--phone {} is not a Vietnamese mobile number", args.phone)
            })?;
            let amount = crate::domain::Money::payable(args.amount).ok_or_else(|| {
                anyhow::anyhow!(
                    "--amount must be 1 to {} đồng",
                    crate::domain::money::MAX_AMOUNT
                )
            })?;
            let pool = crate::db::connect(&args.database).await?;
            crate::db::migrate(&pool).await?;
            let mut tx = pool.begin().await?;
            let reference = format!("cli-funding-{}", uuid::Uuid::new_v4());
            let balance = crate::wallet::funding::fund(&mut tx, &phone, amount, &reference).await?;
            tx.commit().await?;
            println!(
                "funded {phone} with {} đồng; balance now {balance}",
                amount.dong()
            );
            Ok(())
        }
    }
}
