//! Command line and environment settings. Every setting has a flag and an environment
//! variable, and the defaults run out of the box: a SQLite file in the working directory.

use std::time::Duration;

use actix_web::http::header::{self, HeaderName};
use clap::{Args, Parser, Subcommand};

use crate::cache::CacheOptions;
use crate::client_addr::TrustedProxies;
use crate::db::{DEFAULT_WRITER_STALL_SECS, PoolOptions};
use crate::domain::McpPresets;
use crate::domain::idempotency::ResponseSealer;
use crate::domain::rate_limits::RateLimitModels;
use crate::domain::{LifetimePolicy, MAX_EXPIRES_IN_SECONDS};
use crate::lookup_limit::{
    DEFAULT_UNKNOWN_KEY_LOOKUP_BURST, DEFAULT_UNKNOWN_KEY_LOOKUPS_PER_MINUTE, LookupLimit,
};

/// Everything `serve` needs to know. `Settings::default()` is what the binary runs with when
/// given no flags (except the worker count, 1 here rather than the CPU count); tests override
/// what they care about with `..Default::default()`.
#[derive(Clone, Debug)]
pub struct Settings {
    pub database_url: String,
    pub pool: PoolOptions,
    /// `host:port`; port 0 picks a free port (the tests use this).
    pub bind_addr: String,
    /// Where `GET /metrics` is served instead of `bind_addr` (`host:port`); `None` serves it
    /// on `bind_addr`.
    pub metrics_bind_addr: Option<String>,
    pub workers: usize,
    /// How often pending `last_used_at` values are written.
    pub usage_flush_interval: Duration,
    /// Largest accepted JSON body, in bytes.
    pub max_body_bytes: usize,
    /// How long a client has to send a complete request head: counted from accepting the
    /// connection and, on a kept-alive connection, from the first byte of each later request.
    pub request_head_timeout: Duration,
    /// How long a client has to send a request's body once its head has arrived (applied
    /// where the body is read).
    pub request_body_timeout: Duration,
    /// How long an idle kept-alive connection stays open; zero turns keep-alive off.
    pub keep_alive: Duration,
    /// Most open connections per worker; `None` derives it from the open-file limit
    /// (`server::default_max_connections_per_worker`).
    pub max_connections_per_worker: Option<usize>,
    pub cache: CacheOptions,
    /// How long an invite can be accepted, from when it is made.
    pub invite_ttl: Duration,
    /// The proxies whose `X-Forwarded-For` names the client (see `client_addr`).
    pub trusted_proxies: TrustedProxies,
    /// How many lookups of unknown keys each client may make (see `lookup_limit`).
    pub lookup_limit: LookupLimit,
    /// The header forward auth reads a key from when the request has no bearer token;
    /// `None` reads only `Authorization`.
    pub forward_auth_key_header: Option<HeaderName>,
    /// Seals the answers kept for `Idempotency-Key` replays; `None` keeps no answer (a
    /// replay is a 409 naming the key made). See `services::idempotency`.
    pub idempotency_sealer: Option<ResponseSealer>,
    /// The configured models and everyone's default per-model limits (see
    /// `domain::rate_limits`).
    pub rate_limit_models: RateLimitModels,
    /// The organisation's maximum and default lifetime of new keys (see
    /// `domain::lifetime`); checked at start (`LifetimePolicy::check`).
    pub key_lifetime: LifetimePolicy,
    /// The MCP policy presets keys may name (see `domain::mcp`).
    pub mcp_presets: McpPresets,
}

/// The default database: a SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://admin-api-keys.db";
/// The default listen address.
pub const DEFAULT_BIND_ADDR: &str = "127.0.0.1:8080";
/// The default largest request body: 64 KiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;
/// The default time to send a request head, in seconds.
pub const DEFAULT_REQUEST_HEAD_TIMEOUT_SECS: u64 = 5;
/// The default time to send a request body, in seconds: 64 KiB at 6.5 KB/s.
pub const DEFAULT_REQUEST_BODY_TIMEOUT_SECS: u64 = 10;
/// The default keep-alive idle time, in seconds.
pub const DEFAULT_KEEP_ALIVE_SECS: u64 = 5;
/// The default lifetime of an invite, in seconds: 7 days.
pub const DEFAULT_INVITE_TTL_SECS: u64 = 7 * 24 * 3600;
/// The longest lifetime of an invite, in seconds: 30 days.
pub const MAX_INVITE_TTL_SECS: u64 = 30 * 24 * 3600;
/// The header forward auth reads a key from when there is no bearer token (lower case, as
/// `HeaderName` holds it).
pub const DEFAULT_FORWARD_AUTH_KEY_HEADER: &str = "x-api-key";

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            pool: PoolOptions::default(),
            bind_addr: DEFAULT_BIND_ADDR.to_owned(),
            metrics_bind_addr: None,
            workers: 1,
            usage_flush_interval: Duration::from_secs(10),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_head_timeout: Duration::from_secs(DEFAULT_REQUEST_HEAD_TIMEOUT_SECS),
            request_body_timeout: Duration::from_secs(DEFAULT_REQUEST_BODY_TIMEOUT_SECS),
            keep_alive: Duration::from_secs(DEFAULT_KEEP_ALIVE_SECS),
            max_connections_per_worker: None,
            cache: CacheOptions::default(),
            invite_ttl: Duration::from_secs(DEFAULT_INVITE_TTL_SECS),
            trusted_proxies: TrustedProxies::default(),
            lookup_limit: LookupLimit::default(),
            forward_auth_key_header: Some(HeaderName::from_static(DEFAULT_FORWARD_AUTH_KEY_HEADER)),
            idempotency_sealer: None,
            rate_limit_models: RateLimitModels::default(),
            key_lifetime: LifetimePolicy::default(),
            mcp_presets: McpPresets::default(),
        }
    }
}

/// How log lines are written on stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event, coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line, for a log collector.
    Json,
}

/// What `--help` says about the log, under the options.
const LOGGING_HELP: &str = "\
Logging (on stderr):
  RUST_LOG    Which lines are written: a level (error, warn, info, debug, trace) or
              per-target directives, e.g. RUST_LOG=info,admin_api_keys::access=off drops the
              one-line-per-request access log [default: info]
  LOG_FORMAT  `text` or `json` (one JSON object per line); the same as --log-format
              [default: text]
  NO_COLOR    Set to anything but the empty string to turn colour off. Text lines are only
              ever coloured when stderr is a terminal; JSON never is.";

/// A self-hosted authority for administrative API keys, wire-compatible with OpenAI's Admin
/// API Keys. With no subcommand it serves the API.
#[derive(Debug, Parser)]
#[command(
    name = "admin-api-keys",
    version,
    args_conflicts_with_subcommands = true,
    after_help = LOGGING_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
    /// How log lines are written on stderr: `text` or `json` (one object per line).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text,
          ignore_case = true, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve(ServeArgs),
    /// Create an owner and a first admin key; print only the key's value on stdout.
    Bootstrap(BootstrapArgs),
    /// Print the OpenAPI document.
    Openapi,
    /// Break-glass key management on DATABASE_URL, with no admin key (see the README).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Break-glass user management on DATABASE_URL, with no admin key (see the README).
    #[command(subcommand)]
    Users(UsersCommand),
    /// Exit 0 if the server at BIND_ADDR answers 200 on /readyz, 1 otherwise (for container
    /// health checks without curl).
    Healthcheck(HealthcheckArgs),
}

/// `admin-api-keys keys …`: act on the database directly, as an operator with full
/// authority; changes are recorded in the audit log as a `session` of `--as-user`.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List every admin key (oldest first).
    List(ReadArgs),
    /// Show one key.
    Show(ShowArgs),
    /// Disable a key (refused for the last admin key unless --force).
    Disable(WriteArgs),
    /// Enable a key.
    Enable(WriteArgs),
    /// Delete a key for good (refused for the last admin key unless --force).
    Delete(WriteArgs),
}

/// `admin-api-keys users …`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// List every user (oldest first).
    List(ReadArgs),
    /// Disable a user, and with them all their keys (refused for the last owner unless
    /// --force).
    Disable(WriteArgs),
    /// Enable a user.
    Enable(WriteArgs),
}

/// Options of the CLI's listings.
#[derive(Clone, Debug, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Print the objects the API returns (a `list`) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Options of `keys show`.
#[derive(Clone, Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub read: ReadArgs,
    /// The key's id (`key_…`).
    pub id: String,
}

/// Options of the CLI's changes.
#[derive(Clone, Debug, Args)]
pub struct WriteArgs {
    #[command(flatten)]
    pub read: ReadArgs,
    /// The id of the key (`key_…`) or user (`user_…`) to change.
    pub id: String,
    /// The user (`user_…`, see `users list`) the audit log names as this session's; it
    /// attributes the change and grants nothing.
    #[arg(long, env = "ADMIN_API_KEYS_AS_USER")]
    pub as_user: String,
    /// Go ahead even where the lock-out guard refuses (no one left able to run the
    /// organisation).
    #[arg(long)]
    pub force: bool,
}

/// Options of `healthcheck`.
#[derive(Clone, Debug, Args)]
pub struct HealthcheckArgs {
    /// The server's listen address, as given to `serve` (0.0.0.0 and :: are checked on
    /// the loopback address).
    #[arg(long, env = "BIND_ADDR", default_value = DEFAULT_BIND_ADDR)]
    pub bind_addr: String,
    /// Seconds to wait for the answer, in all.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub timeout_secs: u64,
}

/// Where the data lives.
#[derive(Clone, Debug, Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (embedded, the default; relative to the working directory) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` (the password is never logged).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        hide_env_values = true
    )]
    pub database_url: String,
    /// Most database connections this process opens.
    #[arg(long, env = "DATABASE_POOL_SIZE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub pool_size: u32,
    /// Seconds a request waits for a free connection before answering 503.
    #[arg(long, env = "DATABASE_TIMEOUT_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub database_timeout_secs: u64,
    /// Seconds writes may wait without any write finishing before `/readyz` reports the
    /// writer stuck (503).
    #[arg(long, env = "WRITER_STALL_SECS", default_value_t = DEFAULT_WRITER_STALL_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub writer_stall_secs: u64,
}

#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "BIND_ADDR", default_value = DEFAULT_BIND_ADDR)]
    pub bind_addr: String,
    /// A separate address for `GET /metrics` (Prometheus), e.g. on a private interface; the
    /// main address then answers it 404 [default: served on the main address].
    #[arg(long, env = "METRICS_BIND_ADDR")]
    pub metrics_bind_addr: Option<String>,
    /// HTTP worker threads [default: the number of CPUs].
    #[arg(long, env = "WORKERS", value_parser = clap::value_parser!(u16).range(1..=512))]
    pub workers: Option<u16>,
    /// Seconds between writes of batched `last_used_at` values.
    #[arg(long, env = "USAGE_FLUSH_INTERVAL_SECS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub usage_flush_interval_secs: u64,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
    /// Seconds a client has to send a complete request head, from connecting or, on a
    /// kept-alive connection, from the first byte of the request; later, it gets 408.
    #[arg(long, env = "REQUEST_HEAD_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_HEAD_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub request_head_timeout_secs: u64,
    /// Seconds a client has to send a request body once its head has arrived.
    #[arg(long, env = "REQUEST_BODY_TIMEOUT_SECS", default_value_t = DEFAULT_REQUEST_BODY_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_body_timeout_secs: u64,
    /// Seconds an idle kept-alive connection stays open; 0 closes each connection after
    /// one response.
    #[arg(long, env = "KEEP_ALIVE_SECS", default_value_t = DEFAULT_KEEP_ALIVE_SECS,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub keep_alive_secs: u64,
    /// Most open connections per worker; more wait in the listen backlog [default: what
    /// the open-file limit leaves after the process's own descriptors, shared by the workers].
    #[arg(long, env = "MAX_CONNECTIONS_PER_WORKER",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections_per_worker: Option<u32>,
    /// Keys (and, separately, unknown key hashes) the auth cache holds.
    #[arg(long, env = "AUTH_CACHE_CAPACITY", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub auth_cache_capacity: u64,
    /// Seconds a cached key is trusted without hearing of a change; 0 turns the cache off.
    /// Changes made through the API take effect at once regardless (see README).
    #[arg(long, env = "AUTH_CACHE_TTL_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub auth_cache_ttl_secs: u64,
    /// Seconds an invite can be accepted after it is made (60 to 2592000, 30 days); later its
    /// token is refused and the invite shows as `expired`.
    #[arg(long, env = "INVITE_TTL_SECS", default_value_t = DEFAULT_INVITE_TTL_SECS,
          value_parser = clap::value_parser!(u64).range(60..=MAX_INVITE_TTL_SECS))]
    pub invite_ttl_secs: u64,
    /// Proxies whose `X-Forwarded-For` is believed: comma-separated IP addresses and CIDR
    /// ranges (`127.0.0.1,10.0.0.0/8,fd00::/8`). A request from one of them counts as coming
    /// from the last hop of that header that is not a trusted proxy; from anyone else, as
    /// coming from its peer address, whatever the header says [default: none].
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", hide_default_value = true,
          value_parser = clap::value_parser!(TrustedProxies))]
    pub trusted_proxies: TrustedProxies,
    /// Lookups of unknown keys (well-formed, not cached, not in the database) that one client
    /// address (an IPv6 client: its /64) may make per minute, after its burst; beyond that it
    /// gets 429 without a lookup. Cached and malformed keys are never counted. 0 turns the
    /// limit off.
    #[arg(long, env = "UNKNOWN_KEY_LOOKUPS_PER_MINUTE",
          default_value_t = DEFAULT_UNKNOWN_KEY_LOOKUPS_PER_MINUTE,
          value_parser = clap::value_parser!(u32).range(0..=600_000))]
    pub unknown_key_lookups_per_minute: u32,
    /// Lookups of unknown keys one client address may make at once, before the per-minute
    /// rate applies.
    #[arg(long, env = "UNKNOWN_KEY_LOOKUP_BURST",
          default_value_t = DEFAULT_UNKNOWN_KEY_LOOKUP_BURST,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub unknown_key_lookup_burst: u32,
    /// The header `/forward-auth` reads a key from when the request it checks has no
    /// `Authorization: Bearer` token. An empty value reads only `Authorization`.
    #[arg(long, env = "FORWARD_AUTH_KEY_HEADER", default_value = "X-Api-Key",
          value_parser = parse_key_header)]
    pub forward_auth_key_header: KeyHeader,
    /// 64 hex digits (32 random bytes, e.g. `openssl rand -hex 32`; the same on every
    /// replica) that seal the answers kept for `Idempotency-Key` retries, so a create retried
    /// within 24 hours gets its key's secret again. Without it the answer is not kept and
    /// such a retry gets a 409 naming the key made.
    #[arg(long, env = "IDEMPOTENCY_KEY_SECRET", hide_env_values = true,
          value_parser = IdempotencySecretParser, conflicts_with = "idempotency_key_secret_file")]
    pub idempotency_key_secret: Option<ResponseSealer>,
    /// A file holding the `--idempotency-key-secret` (64 hex digits).
    #[arg(long, env = "IDEMPOTENCY_KEY_SECRET_FILE", value_parser = read_idempotency_secret)]
    pub idempotency_key_secret_file: Option<ResponseSealer>,
    /// The models projects have rate limits for, with their default limits: entries separated
    /// by `;`, each a model name and `limit=value` pairs (`rpm`, `tpm`, `ipm`, `apm`, `rpd`,
    /// `batch_tpd`, or upstream's names), e.g. `gpt-4o rpm=500 tpm=30000; * rpm=60`. `*` sets
    /// the defaults of every other model, including those first seen at forward auth
    /// [default: every model 600 requests and 150000 tokens per minute].
    #[arg(long, env = "RATE_LIMIT_MODELS", default_value = "", hide_default_value = true,
          value_parser = clap::value_parser!(RateLimitModels))]
    pub rate_limit_models: RateLimitModels,
    /// The organisation's longest lifetime of a new key of any kind (admin, project member,
    /// service account), in seconds (1 to 31536000): every key made from then on expires
    /// within it (`expires_in_seconds` or `expires_at` beyond it is a 400, and so is a
    /// rotation asking for no expiry); a key made without asking gets the default lifetime,
    /// or this one. Keys that exist keep their expiry [default: no maximum: keys may be made
    /// that never expire, and a lifetime asked for is capped at 365 days].
    #[arg(long, env = "KEY_MAX_LIFETIME_SECS",
          value_parser = clap::value_parser!(i64).range(1..=MAX_EXPIRES_IN_SECONDS))]
    pub key_max_lifetime_secs: Option<i64>,
    /// The lifetime of a new key made without `expires_in_seconds` or `expires_at`, in seconds
    /// (1 to 31536000, at most the maximum) [default: such a key never expires, or under
    /// --key-max-lifetime-secs gets that maximum].
    #[arg(long, env = "KEY_DEFAULT_LIFETIME_SECS",
          value_parser = clap::value_parser!(i64).range(1..=MAX_EXPIRES_IN_SECONDS))]
    pub key_default_lifetime_secs: Option<i64>,
    /// Named MCP policies keys may use (`mcp.preset`): entries separated by `;`, each a name
    /// and `field=value` pairs: `tools=*` or `tools=a,b*`, `read_only=true|false`,
    /// `instances=`, `projects=` and `permissions=` (comma-separated; `*` for any instance or
    /// project), e.g. `support tools=search*,get_* read_only=true`. A key stores the preset's
    /// name: changing a preset here changes every key that uses it. `read_only` and `full` are
    /// built in and may be redefined [default: only the built-in two].
    #[arg(long, env = "MCP_PRESETS", default_value = "", hide_default_value = true,
          value_parser = clap::value_parser!(McpPresets))]
    pub mcp_presets: McpPresets,
}

/// Parses `--idempotency-key-secret` without ever repeating it: clap's errors for a plain
/// parser function quote the value, which here is (nearly) the secret.
#[derive(Clone, Copy, Debug)]
struct IdempotencySecretParser;

impl clap::builder::TypedValueParser for IdempotencySecretParser {
    type Value = ResponseSealer;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<ResponseSealer, clap::Error> {
        let parsed = value.to_str().ok_or_else(String::new);
        parsed.and_then(ResponseSealer::from_hex).map_err(|_| {
            let name = arg.map_or_else(|| "the secret".to_owned(), ToString::to_string);
            clap::Error::raw(
                clap::error::ErrorKind::InvalidValue,
                format!(
                    "the value of {name} (not shown) must be 64 hex digits (32 random bytes), \
                     e.g. from `openssl rand -hex 32`\n"
                ),
            )
            .with_cmd(cmd)
        })
    }
}

fn read_idempotency_secret(path: &str) -> Result<ResponseSealer, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the file: {e}"))?;
    ResponseSealer::from_hex(&text).map_err(|e| format!("the file's content {e}"))
}

/// The `--forward-auth-key-header` setting: a header name, or none.
#[derive(Clone, Debug)]
pub struct KeyHeader(pub Option<HeaderName>);

fn parse_key_header(raw: &str) -> Result<KeyHeader, String> {
    if raw.trim().is_empty() {
        return Ok(KeyHeader(None));
    }
    let name = HeaderName::from_bytes(raw.trim().as_bytes())
        .map_err(|_| "not a valid HTTP header name".to_owned())?;
    if name == header::AUTHORIZATION {
        return Err("`Authorization` is always read; name another header, or none".to_owned());
    }
    Ok(KeyHeader(Some(name)))
}

#[derive(Clone, Debug, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Name of the new owner.
    #[arg(long)]
    pub owner_name: String,
    /// Email of the new owner.
    #[arg(long)]
    pub owner_email: Option<String>,
    /// Name of the new key.
    #[arg(long, default_value = "Bootstrap admin key")]
    pub key_name: String,
    /// The new key's scopes, comma-separated (default: every scope). Without both
    /// `admin_api_keys.write` and `users.write` the key cannot run the organisation.
    #[arg(long, value_delimiter = ',')]
    pub scopes: Option<Vec<String>>,
    /// The new key's permissions, comma-separated (default: `*`, every permission).
    #[arg(long, value_delimiter = ',')]
    pub permissions: Option<Vec<String>>,
    /// Seconds until the new key expires (1 to 31536000; default: it does not expire).
    #[arg(long, allow_negative_numbers = true)]
    pub expires_in_seconds: Option<i64>,
}

impl DatabaseArgs {
    pub fn pool_options(&self) -> PoolOptions {
        PoolOptions {
            max_size: self.pool_size,
            acquire_timeout: Duration::from_secs(self.database_timeout_secs),
            writer_stall: Duration::from_secs(self.writer_stall_secs),
        }
    }
}

impl From<ServeArgs> for Settings {
    fn from(args: ServeArgs) -> Self {
        let workers = args.workers.map(usize::from).unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        });
        Settings {
            pool: args.database.pool_options(),
            database_url: args.database.database_url,
            bind_addr: args.bind_addr,
            metrics_bind_addr: args
                .metrics_bind_addr
                .filter(|addr| !addr.trim().is_empty()),
            workers,
            usage_flush_interval: Duration::from_secs(args.usage_flush_interval_secs),
            max_body_bytes: args.max_body_bytes,
            request_head_timeout: Duration::from_secs(args.request_head_timeout_secs),
            request_body_timeout: Duration::from_secs(args.request_body_timeout_secs),
            keep_alive: Duration::from_secs(args.keep_alive_secs),
            max_connections_per_worker: args.max_connections_per_worker.map(|n| n as usize),
            cache: CacheOptions {
                capacity: usize::try_from(args.auth_cache_capacity).unwrap_or(usize::MAX),
                ttl: Duration::from_secs(args.auth_cache_ttl_secs),
            },
            invite_ttl: Duration::from_secs(args.invite_ttl_secs),
            trusted_proxies: args.trusted_proxies,
            lookup_limit: LookupLimit {
                per_minute: args.unknown_key_lookups_per_minute,
                burst: args.unknown_key_lookup_burst,
            },
            forward_auth_key_header: args.forward_auth_key_header.0,
            idempotency_sealer: args
                .idempotency_key_secret
                .or(args.idempotency_key_secret_file),
            rate_limit_models: args.rate_limit_models,
            key_lifetime: LifetimePolicy {
                max_secs: args.key_max_lifetime_secs,
                default_secs: args.key_default_lifetime_secs,
            },
            mcp_presets: args.mcp_presets,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_malformed_idempotency_secret_is_refused_without_being_repeated() {
        let secret = "5b1f0c9a7e3d2b4c6a8e0f1d3b5c7a9e1f3d5b7c9a0e2f4d6b8c0a1e3f5d7b9";

        let error = Cli::try_parse_from(["admin-api-keys", "--idempotency-key-secret", secret])
            .expect_err("63 hex digits are refused");

        let message = error.to_string();
        assert!(message.contains("64 hex digits"), "{message}");
        assert!(
            !message.contains(secret),
            "the value is not shown: {message}"
        );
    }

    #[test]
    fn an_idempotency_secret_turns_kept_answers_on() {
        let secret = format!("{}7", "0a".repeat(31)) + "f";

        let cli = Cli::try_parse_from(["admin-api-keys", "--idempotency-key-secret", &secret])
            .expect("64 hex digits are a secret");

        assert!(Settings::from(cli.serve).idempotency_sealer.is_some());
        let default = Cli::try_parse_from(["admin-api-keys"]).unwrap();
        assert!(Settings::from(default.serve).idempotency_sealer.is_none());
    }
}

#[cfg(test)]
mod lifetime_policy_tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn the_key_lifetime_policy_comes_from_flags_and_is_checked_at_start() {
        let cli = Cli::try_parse_from([
            "admin-api-keys",
            "--key-max-lifetime-secs",
            "86400",
            "--key-default-lifetime-secs",
            "3600",
        ])
        .unwrap();
        let policy = Settings::from(cli.serve).key_lifetime;
        assert_eq!(
            (policy.max_secs, policy.default_secs),
            (Some(86400), Some(3600))
        );
        assert!(policy.check().is_ok());

        let longer = Cli::try_parse_from([
            "admin-api-keys",
            "--key-max-lifetime-secs",
            "60",
            "--key-default-lifetime-secs",
            "61",
        ])
        .unwrap();
        assert!(Settings::from(longer.serve).key_lifetime.check().is_err());
        assert!(
            Cli::try_parse_from(["admin-api-keys", "--key-max-lifetime-secs", "31536001"]).is_err()
        );
    }
}
