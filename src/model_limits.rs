//! Per-project, per-model request limits, enforced where project keys are verified (forward
//! auth).
//!
//! Policy:
//! - Each (project, model) pair has up to two budgets: requests per minute and requests per
//!   day, each a GCRA (a leaky bucket kept as one theoretical arrival time): the whole limit
//!   may be spent at once, and it refills evenly over its window. A request passes only when
//!   both budgets have a unit; it then takes one from each. A budget of `None` is no limit;
//!   a limit of zero refuses every request.
//! - The answer carries what OpenAI's `x-ratelimit-*-requests` headers say: the limit, what
//!   remains and how long until the budget is full again, for the budget closest to running
//!   out (on a refusal: the one that refused, with how long to wait for one unit).
//! - Budgets are per process: with N replicas behind a load balancer that spreads requests
//!   evenly, a project can make up to N times its limit. Operators who need the limit across
//!   replicas set each replica's limits to limit / N, or route a project to one replica.
//! - Each pair's limits are remembered with its budgets, so a check needs no database round
//!   trip once a pair has been seen: [`ModelLimiter::limits`] answers them or hands out a
//!   ticket for [`ModelLimiter::remember`], which drops what it was given if the limits
//!   were invalidated since the ticket was issued ([`ModelLimiter::forget_project`] when an
//!   operator changes a project's limits, or a model's defaults change).
//! - Memory: one entry per pair that was used (at most projects × known models);
//!   [`ModelLimiter::sweep`] drops the pairs whose budgets are full again and whose limits
//!   are no longer remembered.
//! - Time is the caller's (the application clock's monotonic time), so tests move it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue};

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(86_400);

/// The request limits of one project for one model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestLimits {
    /// Requests per minute; `None` is no limit.
    pub per_minute: Option<u64>,
    /// Requests per day; `None` is no limit.
    pub per_day: Option<u64>,
}

impl RequestLimits {
    /// Whether neither budget limits anything.
    pub fn is_unlimited(&self) -> bool {
        self.per_minute.is_none() && self.per_day.is_none()
    }
}

/// What one budget says about a request: OpenAI's `x-ratelimit-*-requests` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// The budget's limit (`x-ratelimit-limit-requests`).
    pub limit: u64,
    /// Units left after this request (`x-ratelimit-remaining-requests`).
    pub remaining: u64,
    /// Until the budget is full again (`x-ratelimit-reset-requests`).
    pub reset: Duration,
}

/// The answer of [`ModelLimiter::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// No budget applies.
    Unlimited,
    /// The request took a unit of every budget; the quota of the one closest to running out.
    Allowed(Quota),
    /// A budget has no unit left: nothing was taken. Its quota, whether it is the daily one,
    /// and how long until it has a unit.
    Limited {
        quota: Quota,
        per_day: bool,
        retry_after: Duration,
    },
}

/// The budgets of every (project, model) pair in use; see the module policy.
pub struct ModelLimiter {
    budgets: Mutex<HashMap<String, HashMap<String, Arrivals>>>,
    /// Moves with every invalidation of remembered limits.
    generation: AtomicU64,
}

/// The theoretical arrival times (monotonic) of a pair's two budgets (when each is full
/// again), and the pair's limits once looked up.
#[derive(Clone, Copy, Debug, Default)]
struct Arrivals {
    minute: Duration,
    day: Duration,
    limits: Option<RequestLimits>,
}

/// Permission to remember limits read from the database; see [`ModelLimiter::remember`].
#[derive(Debug)]
#[must_use]
pub struct LimitsTicket(u64);

/// One budget's verdict before anything is taken.
struct Probe {
    quota: Quota,
    /// The new arrival time if the request is let through, or how long until a unit is free.
    outcome: Result<Duration, Duration>,
}

/// Judges one GCRA budget of `limit` units per `window` whose arrival time is `arrival`.
fn probe(limit: u64, window: Duration, arrival: Duration, now: Duration) -> Probe {
    if limit == 0 {
        return Probe {
            quota: Quota {
                limit,
                remaining: 0,
                reset: Duration::ZERO,
            },
            outcome: Err(window),
        };
    }
    let interval = window / u32::try_from(limit).unwrap_or(u32::MAX);
    let start = arrival.max(now);
    let next = start + interval;
    let ahead = next - now;
    if ahead > window {
        let used = start - now;
        return Probe {
            quota: Quota {
                limit,
                remaining: 0,
                reset: used,
            },
            outcome: Err(ahead - window),
        };
    }
    let left = window - ahead;
    let remaining = if interval.is_zero() {
        limit
    } else {
        (left.as_nanos() / interval.as_nanos()) as u64
    };
    Probe {
        quota: Quota {
            limit,
            remaining: remaining.min(limit),
            reset: ahead,
        },
        outcome: Ok(next),
    }
}

impl ModelLimiter {
    pub fn new() -> Self {
        Self {
            budgets: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// The remembered limits of `project` for `model`, or a ticket to remember them once read.
    pub fn limits(&self, project: &str, model: &str) -> Result<RequestLimits, LimitsTicket> {
        // The ticket is taken under the lock, so an invalidation after this answer is seen.
        let budgets = self.lock();
        let ticket = LimitsTicket(self.generation.load(Ordering::Acquire));
        budgets
            .get(project)
            .and_then(|models| models.get(model))
            .and_then(|arrivals| arrivals.limits)
            .ok_or(ticket)
    }

    /// Remembers the limits of `project` for `model` read with `ticket`, unless limits were
    /// invalidated since.
    pub fn remember(
        &self,
        project: &str,
        model: &str,
        limits: RequestLimits,
        ticket: LimitsTicket,
    ) {
        let mut budgets = self.lock();
        if self.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        Self::entry(&mut budgets, project, model).limits = Some(limits);
    }

    /// Drops the remembered limits of `project` (its budgets stay as spent).
    pub fn forget_project(&self, project: &str) {
        let mut budgets = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(models) = budgets.get_mut(project) {
            models
                .values_mut()
                .for_each(|arrivals| arrivals.limits = None);
        }
    }

    /// Drops every remembered limit (a model's defaults changed, or the listener missed
    /// messages).
    pub fn forget_all(&self) {
        let mut budgets = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        budgets
            .values_mut()
            .flat_map(HashMap::values_mut)
            .for_each(|arrivals| arrivals.limits = None);
    }

    fn entry<'a>(
        budgets: &'a mut HashMap<String, HashMap<String, Arrivals>>,
        project: &str,
        model: &str,
    ) -> &'a mut Arrivals {
        // Looked up by borrowed names first: no allocation once a pair exists.
        if !budgets.contains_key(project) {
            budgets.insert(project.to_owned(), HashMap::new());
        }
        let models = budgets.get_mut(project).expect("inserted above");
        if !models.contains_key(model) {
            models.insert(model.to_owned(), Arrivals::default());
        }
        models.get_mut(model).expect("inserted above")
    }

    /// Takes one request from `project`'s budgets for `model` under `limits` at `now`
    /// (monotonic), or says why not.
    pub fn check(
        &self,
        project: &str,
        model: &str,
        limits: RequestLimits,
        now: Duration,
    ) -> Decision {
        if limits.is_unlimited() {
            return Decision::Unlimited;
        }
        let mut budgets = self.lock();
        // One lookup for a pair seen before (every request but its first).
        let mut existing = budgets
            .get_mut(project)
            .and_then(|models| models.get_mut(model));
        let arrivals = existing.as_deref().copied().unwrap_or_default();
        let probes = [
            limits
                .per_minute
                .map(|limit| probe(limit, MINUTE, arrivals.minute, now)),
            limits
                .per_day
                .map(|limit| probe(limit, DAY, arrivals.day, now)),
        ];
        // A refusal names the budget that waits longest; a pass, the one with least left.
        if let Some((index, quota, retry_after)) = probes
            .iter()
            .enumerate()
            .filter_map(|(i, p)| p.as_ref().map(|p| (i, p)))
            .filter_map(|(i, p)| p.outcome.err().map(|wait| (i, p.quota, wait)))
            .max_by_key(|(_, _, wait)| *wait)
        {
            return Decision::Limited {
                quota,
                per_day: index == 1,
                retry_after,
            };
        }
        let tightest = probes
            .iter()
            .flatten()
            .map(|p| p.quota)
            .min_by_key(|q| q.remaining)
            .expect("at least one budget applies");
        let [minute, day] = probes;
        let entry = match existing.take() {
            Some(entry) => entry,
            None => Self::entry(&mut budgets, project, model),
        };
        if let Some(minute) = minute {
            entry.minute = minute.outcome.unwrap_or(entry.minute);
        }
        if let Some(day) = day {
            entry.day = day.outcome.unwrap_or(entry.day);
        }
        Decision::Allowed(tightest)
    }

    /// Forgets the pairs whose budgets are full again and whose limits were invalidated.
    pub fn sweep(&self, now: Duration) {
        let mut budgets = self.lock();
        budgets.retain(|_, models| {
            models.retain(|_, arrivals| {
                arrivals.limits.is_some() || arrivals.minute > now || arrivals.day > now
            });
            !models.is_empty()
        });
        budgets.shrink_to_fit();
    }

    /// Pairs with a budget in use (for tests and diagnostics).
    pub fn tracked(&self) -> usize {
        self.lock().values().map(HashMap::len).sum()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<String, Arrivals>>> {
        // Every change under this lock is one insert, overwrite or retain: a panic cannot
        // tear it.
        self.budgets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for ModelLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ModelLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelLimiter")
            .field("tracked", &self.tracked())
            .finish()
    }
}

/// A duration as OpenAI's `x-ratelimit-reset-*` headers write it: `20ms` under a second,
/// else whole seconds rounded up, as `59s`, `6m0s` or `23h59m0s`.
pub fn reset_header(reset: Duration) -> String {
    if reset < Duration::from_secs(1) {
        let millis = reset.as_nanos().div_ceil(1_000_000);
        return format!("{millis}ms");
    }
    let secs = reset.as_nanos().div_ceil(1_000_000_000);
    let (hours, minutes, seconds) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, _) => format!("{minutes}m{seconds}s"),
        _ => format!("{hours}h{minutes}m{seconds}s"),
    }
}

/// OpenAI's `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests` and
/// `x-ratelimit-reset-requests` for `quota`.
pub fn quota_headers(quota: &Quota) -> [(HeaderName, HeaderValue); 3] {
    // Checked when compiled, not on every request.
    const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit-requests");
    const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining-requests");
    const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset-requests");
    let reset = HeaderValue::from_str(&reset_header(quota.reset))
        .expect("digits and unit letters are a header value");
    [
        (LIMIT, HeaderValue::from(quota.limit)),
        (REMAINING, HeaderValue::from(quota.remaining)),
        (RESET, reset),
    ]
}

/// Whole seconds to wait for a `Retry-After` header: at least 1, rounded up.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_nanos().div_ceil(1_000_000_000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A limiter and a hand-moved clock.
    struct Clocked {
        limiter: ModelLimiter,
        now: Cell<Duration>,
    }

    impl Clocked {
        fn check(&self, project: &str, model: &str, limits: RequestLimits) -> Decision {
            self.limiter.check(project, model, limits, self.now.get())
        }
        fn advance(&self, secs: u64) {
            self.now.set(self.now.get() + Duration::from_secs(secs));
        }
        fn sweep(&self) {
            self.limiter.sweep(self.now.get());
        }
    }

    impl std::ops::Deref for Clocked {
        type Target = ModelLimiter;
        fn deref(&self) -> &ModelLimiter {
            &self.limiter
        }
    }

    fn limiter() -> Clocked {
        Clocked {
            limiter: ModelLimiter::new(),
            now: Cell::new(Duration::from_secs(1_000)),
        }
    }

    fn per_minute(n: u64) -> RequestLimits {
        RequestLimits {
            per_minute: Some(n),
            per_day: None,
        }
    }

    /// Requests let through before the first refusal.
    fn spend(limiter: &Clocked, project: &str, model: &str, limits: RequestLimits) -> u64 {
        (0..100_000)
            .take_while(|_| {
                matches!(
                    limiter.check(project, model, limits),
                    Decision::Allowed(_) | Decision::Unlimited
                )
            })
            .count() as u64
    }

    #[test]
    fn a_project_may_spend_its_whole_minute_at_once_then_waits_for_the_refill() {
        let limiter = limiter();
        let clock = &limiter;
        assert_eq!(spend(&limiter, "proj_a", "gpt-4o", per_minute(3)), 3);
        let Decision::Limited {
            quota,
            per_day: false,
            retry_after,
        } = limiter.check("proj_a", "gpt-4o", per_minute(3))
        else {
            panic!("the fourth request in a minute must be refused");
        };
        assert_eq!(quota.remaining, 0);
        assert_eq!(quota.limit, 3);
        assert_eq!(retry_after, Duration::from_secs(20));
        assert_eq!(quota.reset, Duration::from_secs(60));
        clock.advance(20);
        assert!(matches!(
            limiter.check("proj_a", "gpt-4o", per_minute(3)),
            Decision::Allowed(Quota { remaining: 0, .. })
        ));
    }

    #[test]
    fn the_remaining_count_falls_by_one_per_request() {
        let limiter = limiter();
        let remaining: Vec<u64> = (0..3)
            .map(|_| match limiter.check("proj_a", "m", per_minute(3)) {
                Decision::Allowed(quota) => quota.remaining,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
    }

    #[test]
    fn projects_and_models_have_budgets_of_their_own() {
        let limiter = limiter();
        assert_eq!(spend(&limiter, "proj_a", "m1", per_minute(2)), 2);
        assert_eq!(spend(&limiter, "proj_a", "m2", per_minute(2)), 2);
        assert_eq!(spend(&limiter, "proj_b", "m1", per_minute(2)), 2);
        assert_eq!(limiter.tracked(), 3);
    }

    #[test]
    fn the_daily_budget_refuses_even_when_the_minute_has_room() {
        let limiter = limiter();
        let clock = &limiter;
        let limits = RequestLimits {
            per_minute: Some(10),
            per_day: Some(4),
        };
        assert_eq!(spend(&limiter, "p", "m", limits), 4);
        let Decision::Limited {
            quota,
            per_day: true,
            retry_after,
        } = limiter.check("p", "m", limits)
        else {
            panic!("the day's budget is spent");
        };
        assert_eq!(quota.limit, 4);
        assert_eq!(retry_after, Duration::from_secs(86_400 / 4));
        // A minute later the minute budget is full, the day's still not.
        clock.advance(60);
        assert!(matches!(
            limiter.check("p", "m", limits),
            Decision::Limited { .. }
        ));
    }

    #[test]
    fn a_refused_request_takes_nothing_from_either_budget() {
        let limiter = limiter();
        let clock = &limiter;
        let limits = RequestLimits {
            per_minute: Some(1),
            per_day: Some(100),
        };
        assert!(matches!(
            limiter.check("p", "m", limits),
            Decision::Allowed(_)
        ));
        for _ in 0..50 {
            assert!(matches!(
                limiter.check("p", "m", limits),
                Decision::Limited { .. }
            ));
        }
        clock.advance(60);
        let Decision::Allowed(quota) = limiter.check("p", "m", limits) else {
            panic!("the minute refilled");
        };
        // The day's budget lost only the two requests that passed.
        assert_eq!(quota.limit, 1);
        clock.advance(60);
        let day_only = RequestLimits {
            per_minute: None,
            per_day: Some(100),
        };
        let Decision::Allowed(day) = limiter.check("p", "m", day_only) else {
            panic!("the day has room");
        };
        assert_eq!(day.remaining, 97);
    }

    #[test]
    fn zero_refuses_everything_and_none_limits_nothing() {
        let limiter = limiter();
        assert!(matches!(
            limiter.check("p", "m", per_minute(0)),
            Decision::Limited { .. }
        ));
        assert_eq!(
            limiter.check("p", "m", RequestLimits::default()),
            Decision::Unlimited
        );
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn sweeping_forgets_only_full_budgets() {
        let limiter = limiter();
        let clock = &limiter;
        limiter.check("p", "m", per_minute(10));
        let ticket = limiter.limits("q", "m").unwrap_err();
        limiter.remember("q", "m", per_minute(10), ticket);
        limiter.sweep();
        assert_eq!(limiter.tracked(), 2);
        clock.advance(61);
        limiter.sweep();
        assert_eq!(limiter.tracked(), 1, "remembered limits stay");
        limiter.forget_project("q");
        limiter.sweep();
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn limits_are_remembered_until_their_project_is_invalidated() {
        let limiter = limiter();
        let ticket = limiter.limits("p", "m").unwrap_err();
        limiter.remember("p", "m", per_minute(5), ticket);
        assert_eq!(limiter.limits("p", "m").unwrap(), per_minute(5));
        assert!(limiter.limits("p", "other").is_err());
        limiter.forget_project("q");
        assert_eq!(limiter.limits("p", "m").unwrap(), per_minute(5));
        limiter.forget_project("p");
        assert!(limiter.limits("p", "m").is_err());
    }

    #[test]
    fn limits_read_before_an_invalidation_are_not_remembered() {
        let limiter = limiter();
        let stale = limiter.limits("p", "m").unwrap_err();
        limiter.forget_project("p");
        limiter.remember("p", "m", per_minute(5), stale);
        assert!(limiter.limits("p", "m").is_err());
        let ticket = limiter.limits("p", "m").unwrap_err();
        limiter.forget_all();
        limiter.remember("p", "m", per_minute(5), ticket);
        assert!(limiter.limits("p", "m").is_err());
    }

    #[test]
    fn forgetting_limits_keeps_what_was_spent() {
        let limiter = limiter();
        assert_eq!(spend(&limiter, "p", "m", per_minute(2)), 2);
        limiter.forget_project("p");
        assert!(matches!(
            limiter.check("p", "m", per_minute(2)),
            Decision::Limited { .. }
        ));
    }

    #[test]
    fn resets_are_written_as_openai_writes_them() {
        for (reset, text) in [
            (Duration::from_millis(20), "20ms"),
            (Duration::from_micros(1), "1ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1_500), "2s"),
            (Duration::from_secs(360), "6m0s"),
            (Duration::from_secs(86_340), "23h59m0s"),
        ] {
            assert_eq!(reset_header(reset), text, "{reset:?}");
        }
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(20_001)), 21);
    }
}
