//! What the log says about each request, and how it is written.
//!
//! Policy. Per request the log holds one INFO line when the request is answered, the access
//! line (`access`): `HTTP request{…}: admin_api_keys::access: finished latency_us=…`, laid
//! out as the subscriber lays out an event inside a span of that name, and carrying the
//! method, the matched route template (`http.route`, `-` when no route matched), the target
//! with every secret-shaped run redacted and the query reduced to its parameter names
//! (`http.target`, e.g. `/v1/organization/admin_api_keys?limit=…&after=…`), where the call
//! came from (the client address, `client.address`: the one the lookup budget is kept under,
//! after `TRUSTED_PROXIES`, an IPv6 client shown as its /64; and the `User-Agent`, redacted
//! and capped, `user_agent.original`), the request id (`request_id`, the one returned as
//! `X-Request-Id`, see `request_id`), the id of the key that authenticated it (`key_id`,
//! recorded by `auth`), the status and, for a 4xx, its error code (`error_code`, one of ours,
//! never the message). It uses the target [`ACCESS_LOG`], so
//! `RUST_LOG=info,admin_api_keys::access=off` silences it while other events keep going to
//! the log.
//!
//! What a client sends is capped per field: the method at [`MAX_LOGGED_METHOD`] characters and
//! the target at [`MAX_LOGGED_TARGET`] and the user agent at [`MAX_LOGGED_USER_AGENT`]
//! (after redaction, so a cut never shows part of a
//! secret), the rest replaced by `…` and the number of characters left out, so a 30 KB path
//! costs the log half a kilobyte. The request id is at most 64 characters (`request_id`),
//! the route template and the error code are ours.
//!
//! Client text is redacted once, where it enters a field (method, target, user agent); the
//! request id is kept only when it is not shaped like a secret, and the rest is ours.
//!
//! Never logged: a header value of any kind (`Authorization`, `Cookie`, `Host`, forwarding
//! headers: a client can paste a key into any of them) but a safe `X-Request-Id` and the
//! redacted `User-Agent`,
//! a query value, a request or response body, and the message of a 4xx (it may echo what the
//! client sent; the client gets it, the log gets the status and code). A 5xx is logged once
//! at ERROR with its cause chain, by `ApiError::error_response`, or here for an error of
//! another type. A database URL is logged without its password and query ([`database_for_log`]).
//!
//! The binary's subscriber ([`init`]) enforces two more things whatever `RUST_LOG` says.
//! Dependencies that echo request data below INFO are held at INFO: actix-http's request
//! decoder prints the raw value of a malformed `Content-Length` or `Transfer-Encoding`
//! header at DEBUG, and actix-web's extractors print the raw path (percent-encoding and
//! all) when they fail. And every line passes through [`redact_secrets`], after decoding
//! percent-encoded unreserved characters, on its way to stderr: a last guard for a secret
//! that reaches a message by a path nobody foresaw (a dependency, a cause chain). It stays
//! because not every line's text enters at a field of ours (a dependency's event, an error's
//! cause); it is cheap, since the scan jumps with `memchr` to the bytes that can start a
//! secret and a line is decoded only when it holds a `%`.
//!
//! Lines are text (`LOG_FORMAT=text`, the default), coloured only when stderr is a terminal
//! and `NO_COLOR` is unset or empty, or JSON (`LOG_FORMAT=json`): one object per line, the
//! event's fields at the top level beside `timestamp`, `level`, `target` and `message`, and
//! the access line's request fields under `span`. The access line does not pass through
//! the subscriber (it is written whole, once, by `access`), nor through the whole-line
//! redaction: every field of it a client chose was redacted where it entered.

pub mod access;

use std::borrow::Cow;
use std::io::{self, IsTerminal, Write};

use actix_web::http::Uri;
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogFormat;
use crate::db::DatabaseTarget;
use crate::domain::secret::redact_secrets;

/// The `tracing` target of the per-request INFO line.
pub const ACCESS_LOG: &str = "admin_api_keys::access";

/// The most characters of a request's method a log line carries.
pub const MAX_LOGGED_METHOD: usize = 32;
/// The most characters of a request's target (path and query names) a log line carries.
pub const MAX_LOGGED_TARGET: usize = 512;
/// The most characters of a request's `User-Agent` a log line carries.
pub const MAX_LOGGED_USER_AGENT: usize = 256;
/// The request target as the log shows it: the path with percent-encoded unreserved
/// characters decoded and secrets redacted, then the parameter names of the query (redacted
/// too), each followed by `=…` where it had a value. Borrows the path when there is no query
/// and nothing to change.
pub fn loggable_target(uri: &Uri) -> Cow<'_, str> {
    let path = loggable(uri.path());
    let Some(query) = uri.query() else {
        return path;
    };
    let mut out = String::with_capacity(path.len() + query.len() + 1);
    out.push_str(&path);
    out.push('?');
    for (i, pair) in query.split('&').filter(|p| !p.is_empty()).enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (name, value) = match pair.split_once('=') {
            Some((name, _)) => (name, true),
            None => (pair, false),
        };
        out.push_str(&loggable(name));
        if value {
            out.push_str("=…");
        }
    }
    Cow::Owned(out)
}

/// `text` cut after `max` characters, the cut marked with `…` and how many were left out.
pub fn capped(text: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    // No more bytes than `max`: no more characters either.
    if text.len() <= max {
        return text;
    }
    match text.char_indices().nth(max) {
        None => text,
        Some((end, _)) => {
            let left_out = text[end..].chars().count();
            Cow::Owned(format!("{}…(+{left_out} characters)", &text[..end]))
        }
    }
}

/// A `User-Agent` as the log shows it: text (bytes that are not UTF-8 replaced), decoded as
/// far as secrets go, redacted, and with tabs (the one control character a header value may
/// hold) shown as spaces.
pub fn loggable_user_agent(value: &[u8]) -> Cow<'_, str> {
    let text = match String::from_utf8_lossy(value) {
        Cow::Borrowed(text) => loggable(text),
        Cow::Owned(text) => Cow::Owned(loggable(&text).into_owned()),
    };
    if text.contains(|c: char| c.is_control()) {
        Cow::Owned(text.replace(|c: char| c.is_control(), " "))
    } else {
        text
    }
}

/// `text` decoded as far as secrets go, then redacted.
fn loggable(text: &str) -> Cow<'_, str> {
    match decode_unreserved(text) {
        Cow::Borrowed(text) => redact_secrets(text),
        Cow::Owned(decoded) => Cow::Owned(redact_secrets(&decoded).into_owned()),
    }
}

/// `text` with each percent-encoded unreserved character (letter, digit, `-`, `.`, `_`, `~`)
/// decoded, the normalisation of RFC 3986 section 6.2.2.2; other escapes stay as they are.
/// A secret is made of unreserved characters only, so `sk%2Dadmin%2D…` or a key encoded
/// character by character comes out whole, where [`redact_secrets`] finds it, while nothing
/// that was escaped for a reason (`/`, `%`, controls, non-ASCII) is decoded into the log.
fn decode_unreserved(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (i, _) in text.match_indices('%') {
        let decoded = match bytes.get(i + 1..i + 3) {
            Some(&[high, low]) => hex_value(high).zip(hex_value(low)).map(|(h, l)| h << 4 | l),
            _ => None,
        }
        .filter(|b| b.is_ascii_alphanumeric() || b"-._~".contains(b));
        if let Some(byte) = decoded {
            out.push_str(&text[copied..i]);
            out.push(char::from(byte));
            copied = i + 3;
        }
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).map(|d| d as u8)
}

/// Targets held at INFO or quieter whatever `RUST_LOG` asks for, because below that they
/// print what the client sent (see the module policy).
const ECHOING_TARGETS: &[&str] = &["actix_http::h1::decoder", "actix_web"];

/// Installs the binary's subscriber: `RUST_LOG` (default `info`) within the limits of the
/// module policy, lines in `format` on stderr with secrets redacted.
pub fn init(format: LogFormat) {
    let filter = ECHOING_TARGETS.iter().fold(
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        // A directive for the same target replaces the one from RUST_LOG.
        |filter, target| {
            filter.add_directive(format!("{target}=info").parse().expect("a valid directive"))
        },
    );
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| RedactingStderr);
    let ansi = matches!(format, LogFormat::Text) && colour_wanted();
    let _ = access::STYLE.set(access::Style { format, ansi });
    let lines = tracing_subscriber::fmt::format();
    match format {
        LogFormat::Text => subscriber
            .with_ansi(ansi)
            .event_format(InRequest {
                inner: lines.with_ansi(ansi),
                json: false,
            })
            .init(),
        LogFormat::Json => subscriber
            .with_ansi(false)
            .fmt_fields(JsonFields::new())
            .event_format(InRequest {
                inner: lines
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_ansi(false),
                json: true,
            })
            .init(),
    }
}

/// The subscriber's line format, with the id of the request being served on this thread
/// (`access::serving`) added to an event logged while it is: ` request_id=…` at the end of
/// a text line, a top-level `request_id` in a JSON one. So what a request logs (a change it
/// made, a 5xx's cause chain) can be told apart from what others log between its arrival
/// and its access line.
struct InRequest<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for InRequest<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(id) = access::serving() else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.strip_suffix('\n').unwrap_or(&line);
        match body.strip_suffix('}') {
            Some(object) if self.json => writeln!(writer, "{object},\"request_id\":\"{id}\"}}"),
            _ => writeln!(writer, "{body} request_id={id}"),
        }
    }
}

/// Colour for a person at a terminal who has not asked for none (<https://no-color.org>);
/// never in a file or a pipe.
fn colour_wanted() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Which backend a database URL names, and the database as the startup line shows it: for
/// PostgreSQL `user@host:port/db` (no password, no query, where `password=` could be), for
/// SQLite the file path.
pub fn database_for_log(target: &DatabaseTarget) -> (&'static str, String) {
    match target {
        DatabaseTarget::Sqlite(path) => ("sqlite", path.clone()),
        DatabaseTarget::Postgres(url) => ("postgres", postgres_for_log(url)),
    }
}

fn postgres_for_log(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    // The last `@` ends the user information, whatever a careless password holds.
    let shown = match rest.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            if user.is_empty() {
                host.to_owned()
            } else {
                format!("{user}@{host}")
            }
        }
        None => rest.to_owned(),
    };
    redact_secrets(&shown).into_owned()
}

/// Stderr, through [`redact_line`]. The formatter hands over each line in one write, so a
/// secret is never split between two.
struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        io::stderr().write_all(redact_line(&line).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// `line` as written unless it holds a secret, plain or percent-encoded; then the line with
/// unreserved characters decoded and the secrets redacted.
fn redact_line(line: &str) -> Cow<'_, str> {
    let decoded = decode_unreserved(line);
    match redact_secrets(&decoded) {
        Cow::Borrowed(_) => Cow::Borrowed(line),
        Cow::Owned(redacted) => Cow::Owned(redacted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::secret::generate_key;

    fn target(uri: &str) -> String {
        loggable_target(&uri.parse().expect("a valid URI")).into_owned()
    }

    /// Each character of `text` as `%XX`.
    fn encode_all(text: &str) -> String {
        text.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    #[test]
    fn a_plain_path_is_borrowed_unchanged() {
        let uri: Uri = "/v1/organization/admin_api_keys/key_abc".parse().unwrap();
        assert!(matches!(
            loggable_target(&uri),
            Cow::Borrowed("/v1/organization/admin_api_keys/key_abc")
        ));
    }

    #[test]
    fn long_client_text_is_cut_on_a_character_boundary_saying_how_much_was_left_out() {
        assert!(matches!(
            capped(Cow::Borrowed("GET"), 3),
            Cow::Borrowed("GET")
        ));
        assert_eq!(capped(Cow::Borrowed("abcdef"), 4), "abcd…(+2 characters)");
        assert_eq!(capped(Cow::Borrowed("ééééé"), 2), "éé…(+3 characters)");
        let long = format!("/{}", "a".repeat(30_000));
        let uri: Uri = long.parse().unwrap();
        let logged = capped(loggable_target(&uri), MAX_LOGGED_TARGET);
        assert!(logged.len() < MAX_LOGGED_TARGET + 40, "{}", logged.len());
    }

    #[test]
    fn query_values_are_left_out() {
        assert_eq!(
            target("/v1/organization/admin_api_keys?limit=20&after=key_abc&order"),
            "/v1/organization/admin_api_keys?limit=…&after=…&order"
        );
        assert_eq!(target("/x?"), "/x?");
        assert_eq!(target("/x?&a=1&&b="), "/x?a=…&b=…");
    }

    #[test]
    fn secrets_are_redacted_wherever_they_are_in_the_target() {
        let key = generate_key();
        let (plain, redacted) = (key.expose(), key.redacted());
        let body = &plain["sk-admin-".len()..];
        let cases = [
            (
                format!("/v1/organization/admin_api_keys/{plain}/rotate"),
                format!("/v1/organization/admin_api_keys/{redacted}/rotate"),
                "in the path",
            ),
            (
                format!("/v1/organization/admin_api_keys/sk%2Dadmin%2d{body}"),
                format!("/v1/organization/admin_api_keys/{redacted}"),
                "in the path, its hyphens encoded",
            ),
            (
                format!("/{}", encode_all(plain)),
                format!("/{redacted}"),
                "in the path, every character encoded",
            ),
            (
                format!("/x?{plain}=1&search={plain}"),
                format!("/x?{redacted}=…&search=…"),
                "as a query name and value",
            ),
            (
                format!("/x?{}", encode_all(plain)),
                format!("/x?{redacted}"),
                "as an encoded query name",
            ),
        ];
        for (uri, expected, why) in cases {
            let logged = target(&uri);
            assert_eq!(logged, expected, "{why}");
            assert!(!logged.contains(&body[..8]), "{why}: {logged}");
        }
    }

    #[test]
    fn log_lines_change_only_when_they_hold_a_secret() {
        let key = generate_key();
        let body = &key.expose()["sk-admin-".len()..];
        let clean = "DEBUG x: Request path: /a%2Db%41%2F";
        assert!(matches!(redact_line(clean), Cow::Borrowed(line) if line == clean));
        assert_eq!(
            redact_line(&format!("path: /sk%2Dadmin%2D{body}%2F {}", key.expose())),
            format!("path: /{0}%2F {0}", key.redacted())
        );
    }

    #[test]
    fn a_user_agent_is_logged_redacted_with_controls_and_invalid_bytes_made_safe() {
        let key = generate_key();
        assert!(matches!(
            loggable_user_agent(b"curl/8.5.0"),
            Cow::Borrowed("curl/8.5.0")
        ));
        assert_eq!(
            loggable_user_agent(format!("x {}", key.expose()).as_bytes()),
            format!("x {}", key.redacted())
        );
        let body = &key.expose()["sk-admin-".len()..];
        assert_eq!(
            loggable_user_agent(&[format!("sk%2Dadmin-{body}\tb").as_bytes(), b"\xff"].concat()),
            format!("{} b\u{fffd}", key.redacted())
        );
    }

    #[test]
    fn a_postgres_url_is_logged_without_its_password_or_query() {
        let cases = [
            (
                "postgres://app:sekret@db.internal:5432/keys",
                "app@db.internal:5432/keys",
            ),
            (
                "postgresql://app:s%40k:r/t@db:5432/keys?sslmode=require",
                "app@db:5432/keys",
            ),
            ("postgres://app@db/keys?password=sekret", "app@db/keys"),
            ("postgres://:sekret@db/keys", "db/keys"),
            ("postgres://db.internal/keys#sekret", "db.internal/keys"),
        ];
        for (url, shown) in cases {
            let target = DatabaseTarget::Postgres(url.to_owned());
            assert_eq!(
                database_for_log(&target),
                ("postgres", shown.to_owned()),
                "{url}"
            );
        }
        let target = DatabaseTarget::Sqlite("/var/lib/keys.db".to_owned());
        assert_eq!(
            database_for_log(&target),
            ("sqlite", "/var/lib/keys.db".to_owned())
        );
    }

    #[test]
    fn only_unreserved_characters_are_decoded() {
        assert_eq!(
            decode_unreserved("%41%7e%2F%25%0A%C3%A9%2"),
            "A~%2F%25%0A%C3%A9%2"
        );
        assert_eq!(decode_unreserved("100%"), "100%");
        assert_eq!(decode_unreserved("%%41"), "%A");
    }
}
