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
//! - Memory: one entry per pair that was used recently; [`ModelLimiter::sweep`] drops the
//!   pairs whose budgets are full again.
//! - Time comes from the application's [`Clock`] (monotonic), so tests move it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::clock::Clock;

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
    /// A budget has no unit left: nothing was taken. Its quota, and how long until it has one.
    Limited { quota: Quota, retry_after: Duration },
}

/// The budgets of every (project, model) pair in use; see the module policy.
pub struct ModelLimiter {
    budgets: Mutex<HashMap<String, HashMap<String, Arrivals>>>,
    clock: Arc<dyn Clock>,
}

/// The theoretical arrival times (monotonic) of a pair's two budgets: when each is full again.
#[derive(Clone, Copy, Debug, Default)]
struct Arrivals {
    minute: Duration,
    day: Duration,
}

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
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            budgets: Mutex::new(HashMap::new()),
            clock,
        }
    }

    /// Takes one request from `project`'s budgets for `model` under `limits`, or says why not.
    pub fn check(&self, project: &str, model: &str, limits: RequestLimits) -> Decision {
        if limits.is_unlimited() {
            return Decision::Unlimited;
        }
        let now = self.clock.monotonic();
        let mut budgets = self.lock();
        let arrivals = budgets
            .get(project)
            .and_then(|models| models.get(model))
            .copied()
            .unwrap_or_default();
        let probes = [
            limits
                .per_minute
                .map(|limit| probe(limit, MINUTE, arrivals.minute, now)),
            limits
                .per_day
                .map(|limit| probe(limit, DAY, arrivals.day, now)),
        ];
        // A refusal names the budget that waits longest; a pass, the one with least left.
        if let Some((quota, retry_after)) = probes
            .iter()
            .flatten()
            .filter_map(|p| p.outcome.err().map(|wait| (p.quota, wait)))
            .max_by_key(|(_, wait)| *wait)
        {
            return Decision::Limited { quota, retry_after };
        }
        let tightest = probes
            .iter()
            .flatten()
            .map(|p| p.quota)
            .min_by_key(|q| q.remaining)
            .expect("at least one budget applies");
        let [minute, day] = probes;
        let updated = Arrivals {
            minute: minute.map_or(arrivals.minute, |p| p.outcome.unwrap_or(arrivals.minute)),
            day: day.map_or(arrivals.day, |p| p.outcome.unwrap_or(arrivals.day)),
        };
        match budgets.get_mut(project) {
            Some(models) => match models.get_mut(model) {
                Some(entry) => *entry = updated,
                None => {
                    models.insert(model.to_owned(), updated);
                }
            },
            None => {
                budgets.insert(
                    project.to_owned(),
                    HashMap::from([(model.to_owned(), updated)]),
                );
            }
        }
        Decision::Allowed(tightest)
    }

    /// Forgets the pairs whose budgets are full again (bounding memory).
    pub fn sweep(&self) {
        let now = self.clock.monotonic();
        let mut budgets = self.lock();
        budgets.retain(|_, models| {
            models.retain(|_, arrivals| arrivals.minute > now || arrivals.day > now);
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

/// Whole seconds to wait for a `Retry-After` header: at least 1, rounded up.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_nanos().div_ceil(1_000_000_000).max(1) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn limiter() -> (ModelLimiter, ManualClock) {
        let clock = ManualClock::new(1_000);
        (ModelLimiter::new(Arc::new(clock.clone())), clock)
    }

    fn per_minute(n: u64) -> RequestLimits {
        RequestLimits {
            per_minute: Some(n),
            per_day: None,
        }
    }

    /// Requests let through before the first refusal.
    fn spend(limiter: &ModelLimiter, project: &str, model: &str, limits: RequestLimits) -> u64 {
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
        let (limiter, clock) = limiter();
        assert_eq!(spend(&limiter, "proj_a", "gpt-4o", per_minute(3)), 3);
        let Decision::Limited { quota, retry_after } =
            limiter.check("proj_a", "gpt-4o", per_minute(3))
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
        let (limiter, _) = limiter();
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
        let (limiter, _) = limiter();
        assert_eq!(spend(&limiter, "proj_a", "m1", per_minute(2)), 2);
        assert_eq!(spend(&limiter, "proj_a", "m2", per_minute(2)), 2);
        assert_eq!(spend(&limiter, "proj_b", "m1", per_minute(2)), 2);
        assert_eq!(limiter.tracked(), 3);
    }

    #[test]
    fn the_daily_budget_refuses_even_when_the_minute_has_room() {
        let (limiter, clock) = limiter();
        let limits = RequestLimits {
            per_minute: Some(10),
            per_day: Some(4),
        };
        assert_eq!(spend(&limiter, "p", "m", limits), 4);
        let Decision::Limited { quota, retry_after } = limiter.check("p", "m", limits) else {
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
        let (limiter, clock) = limiter();
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
        let (limiter, _) = limiter();
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
        let (limiter, clock) = limiter();
        limiter.check("p", "m", per_minute(10));
        limiter.sweep();
        assert_eq!(limiter.tracked(), 1);
        clock.advance(61);
        limiter.sweep();
        assert_eq!(limiter.tracked(), 0);
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
