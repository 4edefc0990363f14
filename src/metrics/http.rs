//! The HTTP families: requests by route template, method and status, and their latency.
//!
//! [`RequestMetrics`] wraps the App, innermost, so it sees the response the router's service
//! produced. Per request it reads the clock twice, asks actix for the name of the resource it
//! matched (a walk of a few indices, no path matching: every resource of this service is
//! named), and bumps two handles it keeps per worker for each route, method and status. The
//! label is the route template without a `/v1` prefix (a route answers with and without it),
//! worked out once when a series is first seen; `unmatched` when no route matched.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{Future, Ready, ready};
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::{Method, StatusCode};
use actix_web::{Error, HttpRequest};

use super::{HTTP_DURATION, HTTP_REQUESTS};
use crate::error::ApiError;

/// The route label of a request no route matched.
pub const UNMATCHED: &str = "unmatched";

/// The methods that get a label of their own; any other is `other`.
const METHODS: [(Method, &str); 7] = [
    (Method::GET, "GET"),
    (Method::POST, "POST"),
    (Method::DELETE, "DELETE"),
    (Method::HEAD, "HEAD"),
    (Method::PUT, "PUT"),
    (Method::PATCH, "PATCH"),
    (Method::OPTIONS, "OPTIONS"),
];
const OTHER_METHOD: &str = "other";

/// Middleware counting every request; see the module docs.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestMetrics;

impl<S, B> Transform<S, ServiceRequest> for RequestMetrics
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: Unpin,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = RequestMetricsService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestMetricsService {
            service,
            series: Rc::default(),
        }))
    }
}

/// [`RequestMetrics`] on one worker, with that worker's handles.
pub struct RequestMetricsService<S> {
    service: S,
    series: Rc<RefCell<Series>>,
}

impl<S, B> Service<ServiceRequest> for RequestMetricsService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    S::Future: Unpin,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Observed<S::Future>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let method = method_index(req.method());
        Observed {
            inner: self.service.call(req),
            started: Instant::now(),
            method,
            series: Rc::clone(&self.series),
        }
    }
}

/// A request in flight: counted when its response is ready.
pub struct Observed<F> {
    inner: F,
    started: Instant,
    method: u8,
    series: Rc<RefCell<Series>>,
}

impl<F, B> Future for Observed<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let outcome = match Pin::new(&mut self.inner).poll(cx) {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => return Poll::Pending,
        };
        let elapsed = self.started.elapsed();
        let mut series = self.series.borrow_mut();
        let handles = match &outcome {
            Ok(response) => {
                let unmatched = response
                    .response()
                    .error()
                    .and_then(|e| e.as_error::<ApiError>())
                    .is_some_and(|e| matches!(e, ApiError::UnknownRoute));
                let request = (!unmatched).then(|| response.request());
                series.of(request, self.method, response.status())
            }
            Err(error) => series.of(None, self.method, error.as_response_error().status_code()),
        };
        handles.requests.increment(1);
        handles.duration.record(elapsed);
        drop(series);
        Poll::Ready(outcome)
    }
}

fn method_index(method: &Method) -> u8 {
    METHODS
        .iter()
        .position(|(m, _)| m == method)
        .map_or(METHODS.len() as u8, |i| i as u8)
}

fn method_label(index: u8) -> &'static str {
    METHODS
        .get(usize::from(index))
        .map_or(OTHER_METHOD, |(_, label)| label)
}

/// The handles of one route, method and status.
struct Handles {
    requests: ::metrics::Counter,
    duration: ::metrics::Histogram,
}

/// A worker's handles. Named resources are found by the address of their name, which lives
/// in the App's resource map as long as this worker's middleware does; the rest by template.
#[derive(Default)]
struct Series {
    named: HashMap<(usize, u8, u16), Handles, BuildHasherDefault<WordHasher>>,
    by_template: HashMap<(String, u8, u16), Handles>,
}

impl Series {
    /// The handles of a request that matched `request`'s route (`None`: no route).
    fn of(&mut self, request: Option<&HttpRequest>, method: u8, status: StatusCode) -> &Handles {
        let status = status.as_u16();
        let Some(request) = request else {
            return self
                .by_template
                .entry((UNMATCHED.to_owned(), method, status))
                .or_insert_with(|| handles(UNMATCHED, method, status));
        };
        if let Some(name) = request.match_name() {
            let key = (name.as_ptr() as usize, method, status);
            return self.named.entry(key).or_insert_with(|| {
                let template = request.match_pattern();
                handles(&route_label(template.as_deref()), method, status)
            });
        }
        let template = route_label(request.match_pattern().as_deref());
        self.by_template
            .entry((template, method, status))
            .or_insert_with_key(|(template, _, _)| handles(template, method, status))
    }
}

/// The label of a route template: without the `/v1` prefix.
fn route_label(template: Option<&str>) -> String {
    match template {
        Some(template) => template
            .strip_prefix("/v1")
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(template)
            .to_owned(),
        None => UNMATCHED.to_owned(),
    }
}

fn handles(route: &str, method: u8, status: u16) -> Handles {
    let method = method_label(method);
    Handles {
        requests: ::metrics::counter!(
            HTTP_REQUESTS,
            "route" => route.to_owned(),
            "method" => method,
            "status" => status.to_string(),
        ),
        duration: ::metrics::histogram!(
            HTTP_DURATION,
            "route" => route.to_owned(),
            "method" => method,
        ),
    }
}

/// Hashes a few machine words (an address, a method, a status) with one multiply each (the
/// Fx hash): the keys are not chosen by clients.
#[derive(Default)]
struct WordHasher(u64);

impl Hasher for WordHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(u64::from(*byte));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_drop_the_version_prefix_only() {
        assert_eq!(
            route_label(Some("/v1/organization/admin_api_keys/{key_id}")),
            "/organization/admin_api_keys/{key_id}"
        );
        assert_eq!(route_label(Some("/v1openapi")), "/v1openapi");
        assert_eq!(route_label(Some("/healthz")), "/healthz");
        assert_eq!(route_label(None), UNMATCHED);
    }

    #[test]
    fn methods_outside_the_list_share_one_label() {
        assert_eq!(method_label(method_index(&Method::GET)), "GET");
        assert_eq!(method_label(method_index(&Method::OPTIONS)), "OPTIONS");
        let invented = Method::from_bytes(b"SK-ADMIN-SECRET").unwrap();
        assert_eq!(method_label(method_index(&invented)), "other");
    }
}
