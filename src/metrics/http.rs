//! The HTTP families: requests by route template, method and status, and their latency.
//!
//! They are kept here, not in the Prometheus recorder, because they are recorded on every
//! request: a series is a few atomics (a count per status; per route and method a count per
//! latency bucket and a sum), bumped with relaxed adds, and [`render`] writes them in the
//! text format when scraped. A worker finds its handles to a series in a map of its own
//! ([`Series`]): by the address of the name of the resource the router matched (every
//! resource of this service is named; a walk of a few indices, no path matching), by template
//! otherwise. The label is the route template without a `/v1` prefix (a route answers with and
//! without it), worked out once when a worker first sees a series; `unmatched` when no route
//! matched. The request middleware (`telemetry::access`) measures the latency and records it.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::{Method, StatusCode};

use super::{HTTP_DURATION, HTTP_REQUESTS, LATENCY_BUCKETS};

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
/// What [`method_index`] gives a method without a label of its own (and no other).
pub const OTHER_METHODS: u8 = METHODS.len() as u8;

const BUCKETS: usize = LATENCY_BUCKETS.len();

/// The upper bounds of the latency buckets in nanoseconds.
const BOUNDS_NS: [u64; BUCKETS] = {
    let mut bounds = [0; BUCKETS];
    let mut i = 0;
    while i < BUCKETS {
        bounds[i] = (LATENCY_BUCKETS[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    bounds
};

/// The index of `method` among the labelled methods (the length of the list: `other`).
pub fn method_index(method: &Method) -> u8 {
    METHODS
        .iter()
        .position(|(m, _)| m == method)
        .map_or(OTHER_METHODS, |i| i as u8)
}

fn method_label(index: u8) -> &'static str {
    METHODS
        .get(usize::from(index))
        .map_or(OTHER_METHOD, |(_, label)| label)
}

/// The requests of one route, method and status.
struct Requests {
    route: Box<str>,
    method: u8,
    status: u16,
    count: AtomicU64,
}

/// The latency of one route and method: a count per bucket (each bucket on its own, not
/// cumulative; the last one past every bound) and the sum in nanoseconds.
struct Latency {
    route: Box<str>,
    method: u8,
    buckets: [AtomicU64; BUCKETS + 1],
    sum_ns: AtomicU64,
}

impl Latency {
    fn record(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NS.partition_point(|bound| *bound < ns);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }
}

/// Every series of the process, for scrapes; workers hold their own handles to them.
#[derive(Default)]
struct Registry {
    requests: Vec<Arc<Requests>>,
    latency: Vec<Arc<Latency>>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    requests: Vec::new(),
    latency: Vec::new(),
});

impl Registry {
    /// The series of `route`, `method` and `status`, registered on first use.
    fn handles(route: &str, method: u8, status: u16) -> (Arc<Requests>, Arc<Latency>) {
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        let requests = match registry
            .requests
            .iter()
            .find(|r| &*r.route == route && r.method == method && r.status == status)
        {
            Some(found) => Arc::clone(found),
            None => {
                let made = Arc::new(Requests {
                    route: route.into(),
                    method,
                    status,
                    count: AtomicU64::new(0),
                });
                registry.requests.push(Arc::clone(&made));
                made
            }
        };
        let latency = match registry
            .latency
            .iter()
            .find(|l| &*l.route == route && l.method == method)
        {
            Some(found) => Arc::clone(found),
            None => {
                let made = Arc::new(Latency {
                    route: route.into(),
                    method,
                    buckets: [const { AtomicU64::new(0) }; BUCKETS + 1],
                    sum_ns: AtomicU64::new(0),
                });
                registry.latency.push(Arc::clone(&made));
                made
            }
        };
        (requests, latency)
    }
}

/// A worker's handles to the series of one route, method and status.
pub struct Handles {
    requests: Arc<Requests>,
    latency: Arc<Latency>,
    /// The route template as matched (with its `/v1` prefix, if any); `None`: no route.
    template: Option<Rc<str>>,
}

impl Handles {
    /// Counts a request answered after `elapsed`.
    pub fn record(&self, elapsed: Duration) {
        self.requests.count.fetch_add(1, Ordering::Relaxed);
        self.latency.record(elapsed);
    }

    /// The template of the route the request matched, as the router knows it.
    pub fn template(&self) -> Option<&str> {
        self.template.as_deref()
    }
}

/// A worker's handles. Named resources are found by the address of their name, which lives
/// in the App's resource map as long as this worker's middleware does; the rest by template.
#[derive(Default)]
pub struct Series {
    named: HashMap<(usize, u8, u16), Handles, BuildHasherDefault<WordHasher>>,
    by_template: HashMap<(Option<String>, u8, u16), Handles>,
}

/// A worker's [`Series`], shared by its middleware and the requests in flight.
pub type WorkerSeries = Rc<RefCell<Series>>;

impl Series {
    /// The handles of a request that matched `request`'s route (`None`: no route).
    pub fn of(
        &mut self,
        request: Option<&HttpRequest>,
        method: u8,
        status: StatusCode,
    ) -> &Handles {
        let status = status.as_u16();
        if let Some(request) = request
            && let Some(name) = request.match_name()
        {
            let key = (name.as_ptr() as usize, method, status);
            return self
                .named
                .entry(key)
                .or_insert_with(|| handles(request.match_pattern(), method, status));
        }
        let template = request.and_then(HttpRequest::match_pattern);
        self.by_template
            .entry((template, method, status))
            .or_insert_with_key(|(template, _, _)| handles(template.clone(), method, status))
    }
}

fn handles(template: Option<String>, method: u8, status: u16) -> Handles {
    let (requests, latency) = Registry::handles(&route_label(template.as_deref()), method, status);
    Handles {
        requests,
        latency,
        template: template.map(Rc::from),
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

/// Appends both families to `out` in Prometheus' text format, each series in label order.
pub fn render(out: &mut String) {
    let (mut requests, mut latency) = {
        let registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        (registry.requests.clone(), registry.latency.clone())
    };
    requests.sort_by(|a, b| (&a.route, a.method, a.status).cmp(&(&b.route, b.method, b.status)));
    latency.sort_by(|a, b| (&a.route, a.method).cmp(&(&b.route, b.method)));

    out.push_str(concat!(
        "# HELP admin_api_keys_http_requests_total Requests answered, by route template, method and status.\n",
        "# TYPE admin_api_keys_http_requests_total counter\n",
    ));
    for series in &requests {
        let _ = writeln!(
            out,
            "{HTTP_REQUESTS}{{route=\"{}\",method=\"{}\",status=\"{}\"}} {}",
            escaped(&series.route),
            method_label(series.method),
            series.status,
            series.count.load(Ordering::Relaxed)
        );
    }
    out.push('\n');

    out.push_str(concat!(
        "# HELP admin_api_keys_http_request_duration_seconds Time from a request's head to its response, by route template and method.\n",
        "# TYPE admin_api_keys_http_request_duration_seconds histogram\n",
    ));
    for series in &latency {
        let labels = format!(
            "route=\"{}\",method=\"{}\"",
            escaped(&series.route),
            method_label(series.method)
        );
        let mut cumulative = 0;
        for (i, bucket) in series.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = match LATENCY_BUCKETS.get(i) {
                Some(le) => writeln!(
                    out,
                    "{HTTP_DURATION}_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                ),
                None => writeln!(
                    out,
                    "{HTTP_DURATION}_bucket{{{labels},le=\"+Inf\"}} {cumulative}"
                ),
            };
        }
        let sum = series.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{HTTP_DURATION}_sum{{{labels}}} {sum}");
        let _ = writeln!(out, "{HTTP_DURATION}_count{{{labels}}} {cumulative}");
    }
    out.push('\n');
}

/// A label value with `\`, `"` and line feeds escaped, as the text format wants.
fn escaped(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\\', '"', '\n']) {
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
            .into()
    } else {
        value.into()
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

    #[test]
    fn latencies_fall_in_the_first_bucket_whose_bound_they_do_not_exceed() {
        let (requests, latency) = Registry::handles("/test/buckets", 0, 200);
        let handles = Handles {
            requests,
            latency,
            template: None,
        };
        for micros in [100, 250, 251, 20_000_000] {
            handles.record(Duration::from_micros(micros));
        }
        let counts: Vec<u64> = handles
            .latency
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        assert_eq!(&counts[..3], &[2, 1, 0]);
        assert_eq!(counts[BUCKETS], 1, "past every bound");
        assert_eq!(handles.requests.count.load(Ordering::Relaxed), 4);

        let mut text = String::new();
        render(&mut text);
        let labels = "route=\"/test/buckets\",method=\"GET\"";
        for expected in [
            format!("{HTTP_DURATION}_bucket{{{labels},le=\"0.00025\"}} 2\n"),
            format!("{HTTP_DURATION}_bucket{{{labels},le=\"0.0005\"}} 3\n"),
            format!("{HTTP_DURATION}_bucket{{{labels},le=\"10\"}} 3\n"),
            format!("{HTTP_DURATION}_bucket{{{labels},le=\"+Inf\"}} 4\n"),
            format!("{HTTP_DURATION}_sum{{{labels}}} 20.000601\n"),
            format!("{HTTP_DURATION}_count{{{labels}}} 4\n"),
            format!("{HTTP_REQUESTS}{{route=\"/test/buckets\",method=\"GET\",status=\"200\"}} 4\n"),
        ] {
            assert!(text.contains(&expected), "{expected} in\n{text}");
        }
    }
}
