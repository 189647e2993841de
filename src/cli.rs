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
    Serve(ServeArgs),
    /// Create the database if missing, apply pending migrations, and exit.
    Migrate(DatabaseConfig),
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
    let matches = Cli::command()
        .after_long_help(settings_summary())
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match cli.command {
        Command::Serve(args) => {
            crate::ops::logging::init(args.config.log_format);
            crate::app::run(args.config, args.demo).await
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
        Command::CreateAdmin(args) => {
            crate::ops::logging::init(crate::config::LogFormat::Text);
            create_admin(args).await
        }
        Command::Openapi => {
            print!("{}", crate::openapi::document_json());
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
    use crate::auth::{Phone, Role, password};
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
