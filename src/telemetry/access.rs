//! [`Observe`], the middleware around the routes of every request (the innermost, so it sees
//! the response they produced): it gives the request its id (`request_id`), counts it and its
//! latency (`metrics::http`), and writes its access line.
//!
//! The access line is written here, whole, with no `tracing` span behind it: the fields a
//! client chose are worked out once, redacted where they enter (see the module policy of
//! `telemetry`), when the request arrives; the rest (the key, the route, the status, the
//! error code, the latency) when it is answered, and the line goes to stderr in one write,
//! in the format of `LOG_FORMAT` and laid out as the subscriber lays out its own lines. It
//! is written only when `RUST_LOG` enables INFO for [`ACCESS_LOG`]; otherwise nothing of it
//! is worked out. One clock read at arrival and one when answered serve both the latency
//! histogram and the line.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::future::{Future, Ready, ready};
use std::io::Write as _;
use std::net::IpAddr;
use std::ops::Range;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::StatusCode;
use actix_web::http::header::USER_AGENT;
use actix_web::{Error, HttpRequest, web};

use super::{
    ACCESS_LOG, MAX_LOGGED_METHOD, MAX_LOGGED_TARGET, MAX_LOGGED_USER_AGENT, capped,
    loggable_target, loggable_user_agent,
};
use crate::client_addr::ClientAddr;
use crate::config::LogFormat;
use crate::domain::secret::redact_secrets;
use crate::error::ApiError;
use crate::metrics::http::{OTHER_METHODS, WorkerSeries, method_index};
use crate::request_id::{RequestId, WithRequestId, X_REQUEST_ID};
use crate::state::AppState;

/// What `http.route` says when no route matched.
const NO_ROUTE: &str = "-";
/// The most characters of an unexpected error's cause chain a log line carries.
const MAX_LOGGED_CAUSE: usize = 2048;

/// The request id, the HTTP metrics and the access line of each request; see the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Observe;

impl<S, B> Transform<S, ServiceRequest> for Observe
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: Unpin,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = ObserveService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(ObserveService {
            service,
            series: Rc::default(),
        }))
    }
}

/// [`Observe`] on one worker, with that worker's metric handles.
pub struct ObserveService<S> {
    service: S,
    series: WorkerSeries,
}

impl<S, B> Service<ServiceRequest> for ObserveService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: Unpin,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Observed<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let arrived = Instant::now();
        let id = RequestId::for_headers(req.headers());
        let method = method_index(req.method());
        let line = enabled().then(|| Rc::new(Line::arrived(&req, &id)));
        Observed {
            inner: self.service.call(req),
            arrived,
            id: Some(id),
            method,
            line,
            series: Rc::clone(&self.series),
        }
    }
}

/// A request in flight: counted, logged and given its id when its response is ready.
pub struct Observed<F> {
    inner: F,
    arrived: Instant,
    /// Taken when the response is ready.
    id: Option<RequestId>,
    method: u8,
    line: Option<Rc<Line>>,
    series: WorkerSeries,
}

impl<F, B> Future for Observed<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let _serving = self.line.as_ref().map(Serving::enter);
        let outcome = match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => return Poll::Pending,
        };
        let latency = self.arrived.elapsed();
        let this = &mut *self;
        let (status, error, request) = match &outcome {
            Ok(response) => {
                let error = response.response().error();
                let unmatched = error
                    .and_then(|e| e.as_error::<ApiError>())
                    .is_some_and(|e| matches!(e, ApiError::UnknownRoute));
                (
                    response.status(),
                    error,
                    (!unmatched).then(|| response.request()),
                )
            }
            Err(error) => (error.as_response_error().status_code(), Some(error), None),
        };
        let mut series = this.series.borrow_mut();
        let handles = series.of(request, this.method, status);
        handles.record(latency);
        if let Some(line) = &this.line {
            line.answered(handles.template(), status, error, latency);
        }
        drop(series);
        // An ApiError has logged its own cause chain; anything else that ends in a 5xx is
        // logged here, once.
        if let Some(error) =
            error.filter(|e| status.is_server_error() && e.as_error::<ApiError>().is_none())
        {
            tracing::error!(
                status = status.as_u16(),
                cause = %capped(redact_secrets(&error.to_string()), MAX_LOGGED_CAUSE),
                "request failed"
            );
        }
        let id = this
            .id
            .take()
            .expect("a future is not polled after it is ready");
        Poll::Ready(match outcome {
            Ok(mut response) => {
                response
                    .headers_mut()
                    .insert(X_REQUEST_ID, id.into_header_value());
                Ok(response)
            }
            Err(error) => Err(WithRequestId { error, id }.into()),
        })
    }
}

thread_local! {
    /// The line of the request whose future this thread is polling, if it is logged.
    static SERVING: RefCell<Option<Rc<Line>>> = const { RefCell::new(None) };
}

/// Marks a request as the one this thread serves, until dropped.
struct Serving(Option<Rc<Line>>);

impl Serving {
    fn enter(line: &Rc<Line>) -> Self {
        Self(SERVING.replace(Some(Rc::clone(line))))
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        SERVING.set(self.0.take());
    }
}

/// The id of the request this thread is serving, when its access line is written.
pub(super) fn serving() -> Option<String> {
    SERVING.with_borrow(|line| {
        line.as_ref()
            .map(|line| line.text.borrow()[line.request_id.clone()].to_owned())
    })
}

/// Puts the id of the key that authenticated `req` on its access line. `req` is the request
/// this thread is serving (authentication runs while [`Observed`] polls the request), so its
/// line is found without a lookup in the request's extensions.
pub fn record_key_id(_req: &HttpRequest, key_id: &str) {
    SERVING.with_borrow(|line| {
        if let Some(line) = line {
            let mut text = line.text.borrow_mut();
            let start = text.len();
            text.push_str(key_id);
            line.key_id.set(Some((start, text.len())));
        }
    });
}

/// How lines are written: set once by `telemetry::init`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Style {
    pub format: LogFormat,
    pub ansi: bool,
}

pub(super) static STYLE: std::sync::OnceLock<Style> = std::sync::OnceLock::new();

/// Whether the access line is written (`RUST_LOG` enables INFO for [`ACCESS_LOG`]). Asked of
/// the subscriber once per thread: its filter is set once, at start, and never reloaded.
fn enabled() -> bool {
    thread_local! {
        static ENABLED: Cell<Option<bool>> = const { Cell::new(None) };
    }
    ENABLED.get().unwrap_or_else(|| {
        let enabled = tracing::enabled!(target: ACCESS_LOG, tracing::Level::INFO);
        ENABLED.set(Some(enabled));
        enabled
    })
}

/// An access line in the making: what is known when the request arrives.
pub struct Line {
    /// The method, target, request id, client address and user agent, one after the other,
    /// then the key id once authentication found one.
    text: RefCell<String>,
    method: Range<usize>,
    target: Range<usize>,
    request_id: Range<usize>,
    client: Range<usize>,
    user_agent: Option<Range<usize>>,
    key_id: Cell<Option<(usize, usize)>>,
}

impl Line {
    fn arrived(req: &ServiceRequest, id: &RequestId) -> Self {
        let mut text = String::with_capacity(256);
        let field = |text: &mut String, value: &str| {
            let start = text.len();
            text.push_str(value);
            start..text.len()
        };
        // A method is any token, so it may be a secret too (the standard ones are not).
        let method = if method_index(req.method()) < OTHER_METHODS {
            field(&mut text, req.method().as_str())
        } else {
            field(
                &mut text,
                &capped(redact_secrets(req.method().as_str()), MAX_LOGGED_METHOD),
            )
        };
        let target = field(
            &mut text,
            &capped(loggable_target(req.uri()), MAX_LOGGED_TARGET),
        );
        let request_id = field(&mut text, id.as_str());
        // The client the lookup budget is kept under (after TRUSTED_PROXIES).
        let start = text.len();
        match req.app_data::<web::Data<AppState>>() {
            Some(state) => match state.trusted_proxies.client_ip_of(req.request()) {
                // What `ClientAddr` shows, without the formatting machinery for the usual case.
                Some(IpAddr::V4(v4)) => {
                    for (i, octet) in v4.octets().into_iter().enumerate() {
                        if i > 0 {
                            text.push('.');
                        }
                        text.push_str(Digits::of(octet.into()).as_str());
                    }
                }
                Some(ip) => {
                    let _ = write!(text, "{}", ClientAddr::of(ip));
                }
                None => {
                    let _ = write!(text, "{}", ClientAddr::UNKNOWN);
                }
            },
            None => text.push('-'),
        }
        let client = start..text.len();
        let user_agent = req.headers().get(USER_AGENT).map(|value| {
            let shown = capped(loggable_user_agent(value.as_bytes()), MAX_LOGGED_USER_AGENT);
            field(&mut text, &shown)
        });
        Self {
            text: RefCell::new(text),
            method,
            target,
            request_id,
            client,
            user_agent,
            key_id: Cell::new(None),
        }
    }

    /// Writes the line of the request answered `status` after `latency`.
    fn answered(
        &self,
        route: Option<&str>,
        status: StatusCode,
        error: Option<&Error>,
        latency: Duration,
    ) {
        let error_code = error
            .filter(|_| status.is_client_error())
            .and_then(|e| e.as_error::<ApiError>())
            .and_then(ApiError::code);
        let text = self.text.borrow();
        let fields = Fields {
            method: &text[self.method.clone()],
            target: &text[self.target.clone()],
            request_id: &text[self.request_id.clone()],
            client: &text[self.client.clone()],
            user_agent: self.user_agent.clone().map(|r| &text[r]),
            key_id: self.key_id.get().map(|(start, end)| &text[start..end]),
            route: route.unwrap_or(NO_ROUTE),
            status: status.as_u16(),
            error_code,
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        };
        let style = STYLE.get().copied().unwrap_or(Style {
            format: LogFormat::Text,
            ansi: false,
        });
        BUFFER.with_borrow_mut(|line| {
            line.clear();
            let now = Timestamp(SystemTime::now());
            match style.format {
                LogFormat::Text => fields.text(line, now, style.ansi),
                LogFormat::Json => fields.json(line, now),
            }
            let _ = std::io::stderr().write_all(line.as_bytes());
        });
    }
}

thread_local! {
    /// Each thread's line being written, kept for the next one.
    static BUFFER: RefCell<String> = RefCell::new(String::with_capacity(1024));
}

/// Everything an access line says.
struct Fields<'a> {
    method: &'a str,
    target: &'a str,
    request_id: &'a str,
    client: &'a str,
    user_agent: Option<&'a str>,
    key_id: Option<&'a str>,
    route: &'a str,
    status: u16,
    error_code: Option<&'a str>,
    latency_us: u64,
}

impl Fields<'_> {
    /// As the subscriber's text format shows an event in a span: `<time>  INFO HTTP
    /// request{<span fields>}: admin_api_keys::access: finished latency_us=…`, each piece
    /// pushed as it is (no formatting machinery: this runs on every request).
    fn text(&self, out: &mut String, now: Timestamp, ansi: bool) {
        let (dim, bold, italic, green, reset) = if ansi {
            ("\x1b[2m", "\x1b[1m", "\x1b[3m", "\x1b[32m", "\x1b[0m")
        } else {
            ("", "", "", "", "")
        };
        // `label` is ` name=` (the first field's without the space).
        let field = |out: &mut String, label: &str, value: &str| {
            if ansi {
                let (space, name) = match label.strip_prefix(' ') {
                    Some(name) => (" ", name),
                    None => ("", label),
                };
                let name = name.strip_suffix('=').unwrap_or(name);
                push_all(out, &[space, italic, name, reset, dim, "=", reset, value]);
            } else {
                out.push_str(label);
                out.push_str(value);
            }
        };
        if ansi {
            out.push_str(dim);
            now.push_to(out);
            push_all(
                out,
                &[
                    reset,
                    " ",
                    green,
                    " INFO",
                    reset,
                    " ",
                    bold,
                    "HTTP request{",
                    reset,
                ],
            );
        } else {
            now.push_to(out);
            out.push_str("  INFO HTTP request{");
        }
        self.each(out, field);
        if ansi {
            push_all(
                out,
                &[
                    bold, "}", reset, dim, ":", reset, " ", dim, ACCESS_LOG, ":", reset,
                ],
            );
            push_all(
                out,
                &[" finished ", italic, "latency_us", reset, dim, "=", reset],
            );
        } else {
            out.push_str("}: admin_api_keys::access: finished latency_us=");
        }
        out.push_str(Digits::of(self.latency_us).as_str());
        out.push('\n');
    }

    /// Calls `field` with the label (` name=`, the first without its space) and value of
    /// each span field of the text format, in its order.
    fn each(&self, out: &mut String, field: impl Fn(&mut String, &str, &str)) {
        field(out, "http.method=", self.method);
        field(out, " http.target=", self.target);
        field(out, " request_id=", self.request_id);
        field(out, " client.address=", self.client);
        if let Some(user_agent) = self.user_agent {
            field(out, " user_agent.original=", user_agent);
        }
        if let Some(key_id) = self.key_id {
            field(out, " key_id=", key_id);
        }
        field(out, " http.route=", self.route);
        field(
            out,
            " http.status_code=",
            Digits::of(self.status.into()).as_str(),
        );
        if let Some(code) = self.error_code {
            field(out, " error_code=", code);
        }
    }

    /// As the subscriber's JSON format shows an event in a span: the event's fields at the
    /// top level, the span's under `span`, in the same order.
    fn json(&self, out: &mut String, now: Timestamp) {
        out.push_str("{\"timestamp\":\"");
        now.push_to(out);
        out.push_str("\",\"level\":\"INFO\",\"message\":\"finished\",\"latency_us\":");
        out.push_str(Digits::of(self.latency_us).as_str());
        out.push_str(",\"target\":\"");
        out.push_str(ACCESS_LOG);
        out.push_str("\",\"span\":{\"client.address\":");
        json_string(out, self.client);
        if let Some(code) = self.error_code {
            out.push_str(",\"error_code\":");
            json_string(out, code);
        }
        out.push_str(",\"http.method\":");
        json_string(out, self.method);
        out.push_str(",\"http.route\":");
        json_string(out, self.route);
        out.push_str(",\"http.status_code\":");
        out.push_str(Digits::of(self.status.into()).as_str());
        out.push_str(",\"http.target\":");
        json_string(out, self.target);
        if let Some(key_id) = self.key_id {
            out.push_str(",\"key_id\":");
            json_string(out, key_id);
        }
        out.push_str(",\"request_id\":");
        json_string(out, self.request_id);
        if let Some(user_agent) = self.user_agent {
            out.push_str(",\"user_agent.original\":");
            json_string(out, user_agent);
        }
        out.push_str(",\"name\":\"HTTP request\"}}\n");
    }
}

fn push_all(out: &mut String, pieces: &[&str]) {
    for piece in pieces {
        out.push_str(piece);
    }
}

/// The decimal digits of a number, written without the formatting machinery.
struct Digits {
    buffer: [u8; 20],
    start: usize,
}

impl Digits {
    fn of(mut n: u64) -> Self {
        let mut buffer = [0; 20];
        let mut start = buffer.len();
        loop {
            start -= 1;
            buffer[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Self { buffer, start }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buffer[self.start..]).unwrap_or_default()
    }
}

/// `value` as a JSON string.
fn json_string(out: &mut String, value: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, byte) in value.bytes().enumerate() {
        let escape = match byte {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..0x20 => "",
            _ => continue,
        };
        out.push_str(&value[plain..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{byte:04x}");
        } else {
            out.push_str(escape);
        }
        plain = i + 1;
    }
    out.push_str(&value[plain..]);
    out.push('"');
}

/// A moment as the subscriber's lines show it: RFC 3339 in UTC, to the microsecond.
#[derive(Clone, Copy)]
struct Timestamp(SystemTime);

impl Timestamp {
    /// Pushes the moment as the subscriber's lines show it: RFC 3339 in UTC, to the
    /// microsecond (`2026-12-07T05:27:37.012345Z`).
    fn push_to(self, out: &mut String) {
        let since = self
            .0
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let secs = since.as_secs();
        // The date and time to the second change once a second: worked out then, per thread.
        let mut text = SECOND.get();
        if text.0 != secs {
            let (days, of_day) = (secs / 86_400, secs % 86_400);
            let (year, month, day) = civil_from_days(days as i64);
            put_digits(&mut text.1[0..4], year.clamp(0, 9999) as u64);
            put_digits(&mut text.1[5..7], month.into());
            put_digits(&mut text.1[8..10], day.into());
            put_digits(&mut text.1[11..13], of_day / 3600);
            put_digits(&mut text.1[14..16], of_day / 60 % 60);
            put_digits(&mut text.1[17..19], of_day % 60);
            text.0 = secs;
            SECOND.set(text);
        }
        put_digits(&mut text.1[20..26], since.subsec_micros().into());
        out.push_str(std::str::from_utf8(&text.1).unwrap_or_default());
    }
}

thread_local! {
    /// The second a thread last wrote a timestamp of, and that timestamp.
    static SECOND: std::cell::Cell<(u64, [u8; 27])> =
        const { std::cell::Cell::new((u64::MAX, *b"0000-00-00T00:00:00.000000Z")) };
}

/// `n` in decimal, zero-padded to fill `digits`.
fn put_digits(digits: &mut [u8], mut n: u64) {
    for digit in digits.iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> Fields<'static> {
        Fields {
            method: "GET",
            target: "/v1/organization/admin_api_keys?limit=…",
            request_id: "req_abc",
            client: "127.0.0.1",
            user_agent: Some("curl/8 \"quoted\"\\"),
            key_id: Some("key_abc"),
            route: "/v1/organization/admin_api_keys",
            status: 401,
            error_code: Some("missing_api_key"),
            latency_us: 42,
        }
    }

    const AT: Duration = Duration::from_micros(1_796_621_257_012_345);

    #[test]
    fn timestamps_are_rfc_3339_in_utc_to_the_microsecond() {
        let at = |d| {
            let mut text = String::new();
            Timestamp(SystemTime::UNIX_EPOCH + d).push_to(&mut text);
            text
        };
        assert_eq!(at(Duration::ZERO), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(AT), "2026-12-07T05:27:37.012345Z");
        assert_eq!(
            at(Duration::from_secs(951_825_600)),
            "2000-02-29T12:00:00.000000Z"
        );
    }

    #[test]
    fn a_text_line_is_laid_out_as_the_subscriber_lays_out_an_event_in_a_span() {
        let mut line = String::new();
        fields().text(&mut line, Timestamp(SystemTime::UNIX_EPOCH + AT), false);
        assert_eq!(
            line,
            "2026-12-07T05:27:37.012345Z  INFO HTTP request{http.method=GET \
             http.target=/v1/organization/admin_api_keys?limit=… request_id=req_abc \
             client.address=127.0.0.1 user_agent.original=curl/8 \"quoted\"\\ key_id=key_abc \
             http.route=/v1/organization/admin_api_keys http.status_code=401 \
             error_code=missing_api_key}: admin_api_keys::access: finished latency_us=42\n"
        );
    }

    #[test]
    fn a_coloured_text_line_says_the_same_between_its_colour_codes() {
        let at = Timestamp(SystemTime::UNIX_EPOCH + AT);
        let (mut plain, mut coloured) = (String::new(), String::new());
        fields().text(&mut plain, at, false);
        fields().text(&mut coloured, at, true);
        let mut stripped = String::new();
        let mut rest = coloured.as_str();
        while let Some((before, after)) = rest.split_once("\x1b[") {
            stripped.push_str(before);
            rest = after.split_once('m').expect("a colour code ends with m").1;
        }
        stripped.push_str(rest);
        assert_ne!(plain, coloured);
        assert_eq!(stripped, plain);
    }

    #[test]
    fn a_json_line_is_one_object_with_the_span_fields_under_span() {
        let mut line = String::new();
        fields().json(&mut line, Timestamp(SystemTime::UNIX_EPOCH + AT));
        let parsed: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(
            parsed,
            serde_json::json!({
                "timestamp": "2026-12-07T05:27:37.012345Z",
                "level": "INFO",
                "message": "finished",
                "latency_us": 42,
                "target": "admin_api_keys::access",
                "span": {
                    "client.address": "127.0.0.1",
                    "error_code": "missing_api_key",
                    "http.method": "GET",
                    "http.route": "/v1/organization/admin_api_keys",
                    "http.status_code": 401,
                    "http.target": "/v1/organization/admin_api_keys?limit=…",
                    "key_id": "key_abc",
                    "request_id": "req_abc",
                    "user_agent.original": "curl/8 \"quoted\"\\",
                    "name": "HTTP request",
                }
            })
        );
        assert!(line.ends_with("}}\n") && !line[..line.len() - 1].contains('\n'));
    }

    #[test]
    fn numbers_are_written_in_decimal() {
        for n in [0, 7, 10, 401, 123_456_789, u64::MAX] {
            assert_eq!(Digits::of(n).as_str(), n.to_string());
        }
    }

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }
}
