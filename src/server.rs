//! The HTTP server: actix-web's `App` on actix-http's HTTP/1.1 service, over connections
//! whose stream keeps a deadline on every request head.
//!
//! Policy, for every connection:
//!
//! - **Request head.** A client has `head_timeout` to send a complete request head, counted
//!   from the connection being accepted and, on a kept-alive connection, from the first byte
//!   of each later request. A head still incomplete at its deadline is answered `408` in the
//!   error envelope (`invalid_request_error`, code `request_timeout`) and the connection is
//!   closed.
//! - **Keep-alive.** After a response an idle connection stays open for `keep_alive`
//!   (actix-http's keep-alive timer), then it is closed without a response.
//! - **Backstop.** Between requests, a connection on which the server writes nothing and no
//!   head completes for `keep_alive + head_timeout` is closed too, with the same 408. That
//!   covers a connection whose next head began with the previous request's bytes, which
//!   actix-http's keep-alive timer may stop timing.
//! - **Stalled writes.** A connection whose client reads nothing of a response for
//!   `keep_alive + head_timeout` is dropped (a client that pipelines requests and never reads
//!   the responses would otherwise hold it for ever).
//! - **Unparsable heads.** actix-http answers a request head it cannot parse (a malformed
//!   request line or header: 400; a head over its size limit: 431) itself, before any
//!   middleware runs, with an empty body and no `X-Request-Id`. The stream recognises that
//!   answer (a response written while a head is still awaited can only be actix-http's) and
//!   writes in its place the same status in the error envelope (`invalid_request_error`,
//!   code `malformed_request` or `request_header_fields_too_large`) with a request id of our
//!   own, so that every response carries one. The exception: such an error in a request
//!   pipelined behind another on the same connection, whose answer actix-http may write
//!   together with the previous response, keeps actix-http's plain answer.
//! - **Body.** The body's deadline (`Settings::request_body_timeout`) is applied where the body
//!   is read, not here.
//! - **Connections.** Each worker holds at most `max_connections_per_worker` connections; more
//!   wait in the listen backlog. The default ([`default_max_connections_per_worker`]) is what
//!   the open-file limit leaves after the process's own descriptors, so the process never runs
//!   out of them however many clients connect.
//!
//! Why not `HttpServer`: actix-http's `client_request_timeout` bounds only the first request
//! of a connection. Once a byte of a later request arrives, the keep-alive timer is cleared
//! and nothing bounds the head (`h1/dispatcher.rs`: "head timer only applies to first request
//! on connection"), so a client trickling a byte every few seconds holds a connection, and a
//! descriptor, for ever. The server is therefore built from the parts `HttpServer` uses
//! (`actix_server`, `HttpService` with its graceful-shutdown signal, `AppConfig`), with each
//! accepted `TcpStream` wrapped in a [`Guarded`] stream that keeps the deadline. A hook in
//! front of the App tells the stream, through the connection's data, when a head has been
//! parsed. actix-http's own first-request timer stays on, a second later, as a backstop.

use std::cell::Cell;
use std::fmt;
use std::future::{Future, ready};
use std::io;
use std::net::TcpListener;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use actix_http::body::MessageBody;
use actix_http::h1::H1Service;
use actix_http::{Extensions, HttpService, Request, Response};
use actix_server::Server;
use actix_service::{
    IntoServiceFactory, Service, ServiceFactory, ServiceFactoryExt as _, apply_fn_factory,
    fn_service, map_config,
};
use actix_web::dev::AppConfig;
use actix_web::rt::net::TcpStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep, sleep_until};

use crate::error::{ErrorBody, ErrorResponse};
use crate::request_id::RequestId;

/// How long a timed-out connection keeps discarding what the client still sends before it is
/// closed, so that closing it does not reset the connection before the 408 is read.
const LINGER: Duration = Duration::from_secs(1);
/// How much later than our deadline actix-http's own first-request timer fires.
const FIRST_REQUEST_BACKSTOP: Duration = Duration::from_secs(1);
/// actix-server's own default cap on connections per worker.
const ACTIX_MAX_CONNECTIONS_PER_WORKER: u64 = 25_600;
/// Descriptors the process keeps whatever its size: standard streams, the listener, the main
/// runtime, the invalidation listener, migrations, and files libpq opens while connecting.
const RESERVED_FDS: u64 = 64;
/// Descriptors per pooled database connection (SQLite: the database and its WAL; PostgreSQL:
/// one socket), with headroom.
const FDS_PER_DB_CONNECTION: u64 = 2;
/// Descriptors per worker runtime (epoll and eventfd; measured: four per worker).
const FDS_PER_WORKER: u64 = 4;

/// The connection policy; see the module docs.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    pub head_timeout: Duration,
    /// Zero turns keep-alive off: each connection closes after one response.
    pub keep_alive: Duration,
    pub max_connections_per_worker: usize,
}

/// How the server runs.
#[derive(Clone, Copy, Debug)]
pub struct ServerOptions {
    pub workers: usize,
    /// Threads of each worker's blocking pool, where the database calls run.
    pub max_blocking_threads_per_worker: usize,
    pub limits: ConnectionLimits,
}

/// Starts serving `app` on `listener`: `workers` threads, each running the App that `app`
/// builds, over [`Guarded`] connections. Stop it through the returned `Server`'s handle (or a
/// signal); it finishes requests in flight before it resolves.
pub fn run<F, I, S, B>(listener: TcpListener, options: ServerOptions, app: F) -> io::Result<Server>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<Request, Config = AppConfig> + 'static,
    S::Error: Into<actix_web::Error> + 'static,
    S::InitError: fmt::Debug,
    S::Response: Into<Response<B>> + 'static,
    <S::Service as Service<Request>>::Future: 'static,
    S::Service: 'static,
    B: MessageBody + 'static,
{
    let addr = listener.local_addr()?;
    let limits = options.limits;
    let builder = Server::build()
        .workers(options.workers)
        .worker_max_blocking_threads(options.max_blocking_threads_per_worker)
        .max_concurrent_connections(limits.max_connections_per_worker);
    let shutdown = builder.graceful_shutdown_signal();
    let server = builder.listen("admin-api-keys", listener, move || {
        let app = app()
            .into_factory()
            .map_err(|err| err.into().error_response());
        // What `HttpServer` passes the App: plain HTTP, this listener's address as host.
        let host = addr.to_string();
        let app = map_config(app, move |()| {
            AppConfig::__priv_test_new(false, host.clone(), addr)
        });
        let shutdown = shutdown.clone();
        let http: H1Service<Guarded<TcpStream>, _, _> = HttpService::build()
            .keep_alive(limits.keep_alive)
            .client_request_timeout(limits.head_timeout + FIRST_REQUEST_BACKSTOP)
            .client_disconnect_timeout(Duration::from_secs(1))
            .local_addr(addr)
            // Closes idle kept-alive connections at once when a graceful shutdown starts.
            .graceful_shutdown_signal(move || {
                let shutdown = shutdown.clone();
                async move { shutdown.notified().await }
            })
            .on_connect_ext(|io: &Guarded<TcpStream>, data: &mut Extensions| {
                data.insert(io.signal());
            })
            .h1(apply_fn_factory(app, mark_head_received));
        fn_service(move |io: TcpStream| {
            let peer = io.peer_addr().ok();
            ready(Ok((Guarded::new(io, limits), peer)))
        })
        .and_then(http)
    })?;
    Ok(server.run())
}

/// Tells the request's connection that its head has arrived, then serves it.
fn mark_head_received<S: Service<Request>>(request: Request, app: &S) -> S::Future {
    if let Some(signal) = request.conn_data::<HeadSignal>() {
        signal.head_received();
    }
    app.call(request)
}

/// The default cap on connections per worker: the soft `RLIMIT_NOFILE` less the descriptors
/// the process keeps for itself (a fixed reserve, two per database connection, four per
/// worker), shared among the workers; at least 1 and at most actix's own default, 25,600.
pub fn default_max_connections_per_worker(workers: usize, pool_size: u32) -> usize {
    connections_per_worker(open_file_limit(), workers, pool_size)
}

fn connections_per_worker(open_files: u64, workers: usize, pool_size: u32) -> usize {
    let workers = workers.max(1) as u64;
    // The pool, the SQLite writer and the PostgreSQL listener connection.
    let database = FDS_PER_DB_CONNECTION * (u64::from(pool_size) + 2);
    let reserved = RESERVED_FDS + database + FDS_PER_WORKER * workers;
    let per_worker = open_files.saturating_sub(reserved) / workers;
    usize::try_from(per_worker.clamp(1, ACTIX_MAX_CONNECTIONS_PER_WORKER)).unwrap_or(1)
}

/// The soft limit on open files (1024, the usual default, if it cannot be read).
fn open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_cur
    } else {
        1024
    }
}

/// The interim response actix-http writes, alone, to a request that expects it.
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Where a connection is between requests; shared by its stream and its requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading a request head, which must be complete before the deadline.
    Head,
    /// A head has been parsed; the request is being served.
    Serving,
    /// A response has been written; the next byte read starts a head. The deadline is the
    /// backstop, `keep_alive + head_timeout` after the last write.
    Idle,
    /// The deadline passed: reads see the end of the stream and writes are discarded.
    TimedOut,
}

/// The handle through which a request tells its connection that its head has arrived.
#[derive(Clone, Debug)]
struct HeadSignal(Rc<Cell<Phase>>);

impl HeadSignal {
    fn head_received(&self) {
        if matches!(self.0.get(), Phase::Head | Phase::Idle) {
            self.0.set(Phase::Serving);
        }
    }
}

/// A connection's stream, enforcing the policy in the module docs. When a deadline passes it
/// writes the 408 itself (unless a response is still half-written), shuts its side of the
/// connection, then reports the end of the stream to actix-http, which closes it.
pub struct Guarded<T> {
    io: T,
    phase: Rc<Cell<Phase>>,
    deadline: Pin<Box<Sleep>>,
    head_timeout: Duration,
    idle_timeout: Duration,
    /// Set while the client reads nothing: when it fires, the connection is dropped. Made
    /// the first time a write blocks.
    write_stall: Option<Pin<Box<Sleep>>>,
    /// The last write could not complete: a 408 now would land inside a response.
    write_blocked: bool,
    /// Our answer in place of actix-http's to a head it could not parse, and how much of it
    /// is written; while set, what actix-http writes is discarded.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<T> Guarded<T> {
    /// A stream just accepted: its first head is due `head_timeout` from now.
    fn new(io: T, limits: ConnectionLimits) -> Self {
        Self {
            io,
            phase: Rc::new(Cell::new(Phase::Head)),
            deadline: Box::pin(sleep_until(Instant::now() + limits.head_timeout)),
            head_timeout: limits.head_timeout,
            idle_timeout: limits.keep_alive + limits.head_timeout,
            write_stall: None,
            write_blocked: false,
            replacement: None,
        }
    }

    fn signal(&self) -> HeadSignal {
        HeadSignal(Rc::clone(&self.phase))
    }

    fn set_deadline(&mut self, phase: Phase, after: Duration) {
        self.phase.set(phase);
        self.deadline.as_mut().reset(Instant::now() + after);
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Guarded<T> {
    /// The deadline passed: answer 408 if the response can be written whole, shut our side.
    fn time_out(&mut self, cx: &mut Context<'_>) {
        let id = RequestId::generate();
        tracing::debug!(phase = ?self.phase.get(), request_id = %id, "request head not received in time");
        if !self.write_blocked {
            let response = timeout_response(self.head_timeout, &id);
            let mut written = 0;
            while written < response.len() {
                match Pin::new(&mut self.io).poll_write(cx, &response[written..]) {
                    Poll::Ready(Ok(n)) if n > 0 => written += n,
                    // A client that does not read gets what fitted.
                    _ => break,
                }
            }
        }
        let _ = Pin::new(&mut self.io).poll_shutdown(cx);
        self.set_deadline(Phase::TimedOut, LINGER);
    }

    /// Writes what is left of the replacement answer; ready once it is all written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some((response, written)) = &mut self.replacement else {
            return Poll::Ready(Ok(()));
        };
        while *written < response.len() {
            match Pin::new(&mut self.io).poll_write(cx, &response[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Discards what the client still sends until it closes or `LINGER` passes.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut scratch = [0u8; 1024];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => continue,
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => return self.deadline.as_mut().poll(cx).map(Ok),
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let phase = this.phase.get();
        let timed = matches!(phase, Phase::Head | Phase::Idle);
        if phase == Phase::TimedOut {
            return Poll::Ready(Ok(()));
        }
        // The timer fired and woke us.
        if timed && this.deadline.is_elapsed() {
            this.time_out(cx);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            // Only a read that waits needs the timer to wake it (after a ready one, actix-http
            // reads again), so only then is it polled: this is on every request's path.
            Poll::Pending => {
                if timed && this.deadline.as_mut().poll(cx).is_ready() {
                    this.time_out(cx);
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending
            }
            Poll::Ready(Ok(())) => {
                if phase == Phase::Idle && buf.filled().len() > before {
                    this.set_deadline(Phase::Head, this.head_timeout);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let phase = this.phase.get();
        if phase == Phase::TimedOut {
            return Poll::Ready(Ok(buf.len()));
        }
        // No head has been parsed, so this is actix-http answering one it could not parse.
        if phase == Phase::Head
            && this.replacement.is_none()
            && let Some(response) = parser_error_replacement(buf)
        {
            this.replacement = Some((response, 0));
        }
        if this.replacement.is_some() {
            return match this.poll_replacement(cx) {
                Poll::Ready(Ok(())) => Poll::Ready(Ok(buf.len())),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            };
        }
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        if result.is_pending() {
            if !this.write_blocked {
                let stall_end = Instant::now() + this.idle_timeout;
                match &mut this.write_stall {
                    Some(stall) => stall.as_mut().reset(stall_end),
                    None => this.write_stall = Some(Box::pin(sleep_until(stall_end))),
                }
            }
            this.write_blocked = true;
            if let Some(stall) = &mut this.write_stall
                && stall.as_mut().poll(cx).is_ready()
            {
                tracing::debug!("the client read nothing in time; dropping the connection");
                return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
            }
            return Poll::Pending;
        }
        this.write_blocked = false;
        let progressed = matches!(result, Poll::Ready(Ok(n)) if n > 0);
        // A final response ends the request; an interim `100 Continue` (actix writes it on
        // its own, before the body) does not: the body's deadline is the extractor's. Every
        // write that makes progress pushes the backstop back.
        let interim = buf == CONTINUE;
        if !interim && (phase == Phase::Serving || (phase == Phase::Idle && progressed)) {
            this.set_deadline(Phase::Idle, this.idle_timeout);
        }
        result
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.phase.get() == Phase::TimedOut {
            return Poll::Ready(Ok(()));
        }
        if this.poll_replacement(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.phase.get() == Phase::TimedOut {
            return this.poll_linger(cx);
        }
        if this.poll_replacement(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

/// The whole 408 response, in the error envelope, with a request id of its own.
fn timeout_response(head_timeout: Duration, id: &RequestId) -> Vec<u8> {
    let message = format!(
        "The request head (request line and headers) was not received within {} seconds.",
        head_timeout.as_secs_f64()
    );
    closing_response("408 Request Timeout", message, "request_timeout", id)
}

/// Our answer in place of the one actix-http writes when it cannot parse a request head
/// (`written`, the start of what it writes), or `None` if `written` is not such an answer.
fn parser_error_replacement(written: &[u8]) -> Option<Vec<u8>> {
    let status = written.strip_prefix(b"HTTP/1.")?.get(2..6)?;
    let (status, message, code) = match status {
        b"400 " => (
            "400 Bad Request",
            "The request line or a header could not be parsed as HTTP/1.1.",
            "malformed_request",
        ),
        b"431 " => (
            "431 Request Header Fields Too Large",
            "The request head (request line and headers) is larger than this server accepts.",
            "request_header_fields_too_large",
        ),
        _ => return None,
    };
    let id = RequestId::generate();
    tracing::debug!(request_id = %id, status = %status, "request head could not be parsed");
    Some(closing_response(status, message.to_owned(), code, &id))
}

/// A whole response that closes the connection: `status` (code and reason), the error
/// envelope with `message` and `code`, and the request id `id`.
fn closing_response(status: &str, message: String, code: &str, id: &RequestId) -> Vec<u8> {
    let envelope = ErrorResponse {
        error: ErrorBody {
            message,
            kind: "invalid_request_error",
            param: None,
            code: Some(code.to_owned()),
        },
    };
    let body = serde_json::to_vec(&envelope).expect("the envelope serialises");
    let mut response = format!(
        "HTTP/1.1 {status}\r\n\
         content-type: application/json\r\n\
         content-length: {}\r\n\
         cache-control: no-store\r\n\
         connection: close\r\n\
         x-request-id: {id}\r\n\
         date: {}\r\n\r\n",
        body.len(),
        httpdate::fmt_http_date(SystemTime::now())
    )
    .into_bytes();
    response.extend_from_slice(&body);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_shares_what_the_file_limit_leaves_among_the_workers() {
        // 1024 - (64 + 2 * 12 + 4 * 2) = 928, over two workers.
        assert_eq!(connections_per_worker(1024, 2, 10), 464);
        assert_eq!(connections_per_worker(1024, 1, 10), 932);
    }

    #[test]
    fn the_connection_cap_stays_between_one_and_actix_default() {
        assert_eq!(
            connections_per_worker(50, 4, 10),
            1,
            "limit below the reserve"
        );
        assert_eq!(connections_per_worker(u64::MAX, 1, 10), 25_600, "no limit");
    }

    #[test]
    fn only_actix_http_answers_to_unparsable_heads_are_replaced() {
        let replaced =
            parser_error_replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .expect("a replacement");
        let text = String::from_utf8(replaced).unwrap();
        assert!(text.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(text.contains("x-request-id: req_"), "{text}");
        assert!(text.ends_with("\"code\":\"malformed_request\"}}"), "{text}");
        let large = parser_error_replacement(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
            .expect("a replacement");
        assert!(large.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        for other in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"HTTP/1.1 40",
            b"{\"HTTP/1.1 400 ",
        ] {
            assert!(parser_error_replacement(other).is_none());
        }
    }

    #[test]
    fn the_timeout_response_is_a_complete_408_in_the_error_envelope() {
        let id = RequestId::generate();
        let response =
            String::from_utf8(timeout_response(Duration::from_millis(1500), &id)).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
            "{head}"
        );
        assert!(head.contains(&format!("x-request-id: {id}\r\n")), "{head}");
        assert!(
            head.contains(&format!("content-length: {}\r\n", body.len())),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"]["type"], "invalid_request_error");
        assert_eq!(body["error"]["code"], "request_timeout");
        assert!(body["error"]["param"].is_null());
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1.5 seconds"),
            "{body}"
        );
    }
}
