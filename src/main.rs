//! The `admin-api-keys` binary: parse arguments, set up logging, dispatch.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use std::time::Duration;

use admin_api_keys::cli;
use admin_api_keys::clock::{Clock, SystemClock};
use admin_api_keys::config::{BootstrapArgs, Cli, Command, Settings};
use admin_api_keys::db;
use admin_api_keys::domain::{Email, KeyLifetime, KeyName, Permissions, Scope, Scopes};
use admin_api_keys::error::error_chain;
use admin_api_keys::services::bootstrap::{FirstKey, create_owner_with};
use admin_api_keys::startup::Application;
use clap::Parser;

// The request path allocates many small, short-lived objects (headers, extensions, JSON
// buffers); mimalloc's thread-local free lists serve them faster than glibc's arenas.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    admin_api_keys::telemetry::init(cli.log_format);
    let result = match cli.command {
        None => serve(cli.serve.into()),
        Some(Command::Serve(args)) => serve(args.into()),
        Some(Command::Bootstrap(args)) => bootstrap(args),
        Some(Command::Openapi) => {
            print!("{}", admin_api_keys::openapi::document());
            Ok(())
        }
        Some(Command::Keys(command)) => cli::keys(command),
        Some(Command::Users(command)) => cli::users(command),
        Some(Command::Healthcheck(args)) => {
            cli::healthcheck::check(&args.bind_addr, Duration::from_secs(args.timeout_secs))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn serve(settings: Settings) -> Result<(), String> {
    (settings.key_lifetime.check())
        .map_err(|e| format!("--key-default-lifetime-secs, --key-max-lifetime-secs: {e}"))?;
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings.clone(), Arc::new(SystemClock))
            .await
            .map_err(|e| error_chain(&e))?;
        tracing::info!(
            addr = %settings.bind_addr,
            port = app.port(),
            workers = settings.workers,
            "admin-api-keys is serving"
        );
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}

fn bootstrap(args: BootstrapArgs) -> Result<(), String> {
    let owner_name =
        KeyName::parse("owner-name", &args.owner_name).map_err(|e| format!("--owner-name: {e}"))?;
    let key_name =
        KeyName::parse("key-name", &args.key_name).map_err(|e| format!("--key-name: {e}"))?;
    let owner_email = args
        .owner_email
        .as_deref()
        .map(|email| Email::parse("owner-email", email))
        .transpose()
        .map_err(|e| format!("--owner-email: {e}"))?;
    let first = first_key(&args)?;
    let pool = db::connect_and_migrate(
        &args.database.database_url,
        &args.database.pool_options(),
        db::QueryCounter::default(),
    )
    .map_err(|e| error_chain(&e))?;
    let mut conn = pool.get().map_err(|e| e.to_string())?;
    let made = create_owner_with(
        &mut conn,
        &owner_name,
        owner_email.as_ref(),
        &key_name,
        first,
        SystemClock.now(),
    )
    .map_err(|e| format!("cannot create the owner and key: {e}"))?;
    tracing::info!(owner_id = %made.owner_id, key_id = %made.key_id, "bootstrapped a new owner and admin key");
    // The key's value is the only thing on stdout, so `KEY=$(admin-api-keys bootstrap ...)` works.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", made.secret.expose())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot print the key: {e}"))
}

/// What `--scopes`, `--permissions` and `--expires-in-seconds` ask of the first key.
fn first_key(args: &BootstrapArgs) -> Result<FirstKey, String> {
    let mut first = FirstKey::default();
    if let Some(names) = &args.scopes {
        let mut scopes = Vec::new();
        for name in names.iter().map(|name| name.trim()) {
            let scope = Scope::parse(name).ok_or_else(|| {
                let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                format!(
                    "--scopes: unknown scope; the scopes are {}",
                    known.join(", ")
                )
            })?;
            scopes.push(scope);
        }
        if scopes.is_empty() {
            return Err("--scopes: name at least one scope".to_owned());
        }
        first.scopes = scopes.into_iter().collect::<Scopes>();
    }
    if let Some(permissions) = &args.permissions {
        let permissions: Vec<String> = permissions.iter().map(|p| p.trim().to_owned()).collect();
        first.permissions = Permissions::parse("permissions", &permissions)
            .map_err(|e| format!("--permissions: {e}"))?;
    }
    first.lifetime = KeyLifetime::parse(args.expires_in_seconds)
        .map_err(|e| format!("--expires-in-seconds: {e}"))?;
    Ok(first)
}
