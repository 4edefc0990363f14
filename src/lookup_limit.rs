//! A per-client budget for the authentication lookups that reach the database and find nothing.
//!
//! Why: the key format's checksum is public, so anyone can mint well-formed keys, and each new
//! one costs a database lookup before the negative cache knows its hash. A flood of distinct
//! invented keys would otherwise be a flood of queries.
//!
//! Policy:
//! - Only lookups that reached the database and found no key are charged. A request answered
//!   from the caches (a known key, a hash recently found unknown) and a malformed key (refused
//!   before any lookup) never touch the limiter; neither does a lookup that finds a key, so a
//!   client whose keys fall out of the cache (TTL, an invalidation, a cache bypassed while the
//!   listener reconnects) is never limited for using them.
//! - Before a lookup, a client whose budget is spent is answered 429 with `Retry-After`, and no
//!   lookup is made. This check cannot know whether the key would have been found, so a key not
//!   yet in this process's cache, presented from an address that is over its budget, waits too.
//! - The budget is a GCRA (`governor`) per [`ClientAddr`]: `burst` lookups at once, refilled at
//!   `per_minute`. governor cannot test a budget without spending it, so the verdict "spent
//!   until T" of each charge is kept in a small bounded cache that the check before a lookup
//!   reads. It is exact when a charge is refused and errs on the strict side by less than one
//!   refill interval when a charge takes the last unit. Requests already past the check when
//!   the budget runs out still make their lookups (at most as many as run concurrently).
//! - Memory: governor keeps one entry per address charged; [`LookupLimiter::sweep`] (every
//!   [`SWEEP_INTERVAL`]) drops those whose budget is full again, so the entries are the
//!   addresses with a charged lookup in the last `burst` refill intervals plus one sweep
//!   interval, each of which cost a database query. The cache of verdicts holds at most
//!   `capacity` addresses; an evicted one is refused again after one more lookup.
//! - Each process keeps its own budgets: N replicas let N times the rate reach the database.
//! - Time comes from the application's [`Clock`] (monotonic in production), so tests refill a
//!   budget by moving their clock.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use quick_cache::sync::Cache as Bounded;

use crate::client_addr::ClientAddr;
use crate::clock::Clock;

/// How often [`LookupLimiter::sweep`] runs.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// How many unknown-key lookups a client may make: `burst` at once, refilled at `per_minute`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupLimit {
    /// Refill rate; zero turns the limit off.
    pub per_minute: u32,
    /// Lookups a client with a full budget may make at once (at least 1).
    pub burst: u32,
}

/// The default refill rate: one lookup a second per address.
pub const DEFAULT_UNKNOWN_KEY_LOOKUPS_PER_MINUTE: u32 = 60;
/// The default burst.
pub const DEFAULT_UNKNOWN_KEY_LOOKUP_BURST: u32 = 30;

impl Default for LookupLimit {
    fn default() -> Self {
        Self {
            per_minute: DEFAULT_UNKNOWN_KEY_LOOKUPS_PER_MINUTE,
            burst: DEFAULT_UNKNOWN_KEY_LOOKUP_BURST,
        }
    }
}

/// governor's view of the application clock.
#[derive(Clone)]
struct LimiterClock(Arc<dyn Clock>);

impl governor::clock::Clock for LimiterClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.monotonic()
    }
}

type Keyed = RateLimiter<
    ClientAddr,
    DefaultKeyedStateStore<ClientAddr>,
    LimiterClock,
    StateInformationMiddleware,
>;

/// The budgets of every client; see the module policy.
pub struct LookupLimiter(Option<Limiter>);

struct Limiter {
    budgets: Keyed,
    /// Until when (monotonic time) each client's budget is known to be spent.
    spent_until: Bounded<ClientAddr, Duration>,
    clock: LimiterClock,
    interval: Duration,
}

impl LookupLimiter {
    /// Budgets of `limit` (none when its rate is zero), with verdicts for at most `capacity`
    /// clients kept.
    pub fn new(limit: LookupLimit, clock: Arc<dyn Clock>, capacity: usize) -> Self {
        let Some(per_minute) = NonZeroU32::new(limit.per_minute) else {
            return Self(None);
        };
        let interval = Duration::from_secs(60) / per_minute.get();
        let burst = NonZeroU32::new(limit.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(interval)
            .expect("a rate of at most u32::MAX per minute has a non-zero period")
            .allow_burst(burst);
        let clock = LimiterClock(clock);
        let budgets: Keyed =
            RateLimiter::new(quota, DefaultKeyedStateStore::default(), clock.clone());
        Self(Some(Limiter {
            budgets,
            spent_until: Bounded::new(capacity.max(1)),
            clock,
            interval,
        }))
    }

    /// Before a lookup: `Err(wait)` when `client` has spent its budget and may look up again
    /// after `wait`.
    pub fn check(&self, client: ClientAddr) -> Result<(), Duration> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        match limiter.spent_until.get(&client) {
            Some(until) => {
                let now = limiter.clock.0.monotonic();
                if until > now {
                    Err(until - now)
                } else {
                    Ok(())
                }
            }
            None => Ok(()),
        }
    }

    /// After a lookup that found nothing: spends one unit of `client`'s budget.
    pub fn charge(&self, client: ClientAddr) {
        let Some(limiter) = &self.0 else {
            return;
        };
        let until = match limiter.budgets.check_key(&client) {
            Ok(state) if state.remaining_burst_capacity() > 0 => return,
            // The last unit: the next is due within one interval.
            Ok(_) => limiter.clock.0.monotonic() + limiter.interval,
            // Already spent (a lookup that passed the check concurrently with the one that
            // spent the budget): exact.
            Err(not_until) => not_until.earliest_possible(),
        };
        limiter.spent_until.insert(client, until);
    }

    /// Forgets the clients whose budget is full again (bounding memory; see the module policy).
    pub fn sweep(&self) {
        if let Some(limiter) = &self.0 {
            limiter.budgets.retain_recent();
            limiter.budgets.shrink_to_fit();
        }
    }

    /// Clients with a budget in use (for tests and diagnostics).
    pub fn tracked(&self) -> usize {
        self.0.as_ref().map_or(0, |limiter| limiter.budgets.len())
    }
}

impl std::fmt::Debug for LookupLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("LookupLimiter(off)"),
            Some(limiter) => f
                .debug_struct("LookupLimiter")
                .field("interval", &limiter.interval)
                .field("tracked", &limiter.budgets.len())
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn client(n: u8) -> ClientAddr {
        ClientAddr::of(std::net::IpAddr::from([192, 0, 2, n]))
    }

    fn limiter(per_minute: u32, burst: u32) -> (LookupLimiter, ManualClock) {
        let clock = ManualClock::new(1_000);
        let limiter = LookupLimiter::new(
            LookupLimit { per_minute, burst },
            Arc::new(clock.clone()),
            100,
        );
        (limiter, clock)
    }

    /// Charges `client` for lookups while its budget allows; returns how many it made.
    fn spend(limiter: &LookupLimiter, client: ClientAddr) -> usize {
        (0..1_000)
            .take_while(|_| {
                let allowed = limiter.check(client).is_ok();
                if allowed {
                    limiter.charge(client);
                }
                allowed
            })
            .count()
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_one_interval_per_lookup() {
        let (limiter, clock) = limiter(30, 3);
        assert_eq!(spend(&limiter, client(1)), 3);
        assert_eq!(limiter.check(client(1)), Err(Duration::from_secs(2)));
        clock.advance(1);
        assert_eq!(limiter.check(client(1)), Err(Duration::from_secs(1)));
        clock.advance(1);
        assert_eq!(spend(&limiter, client(1)), 1, "one interval refills one");
        clock.advance(60);
        assert_eq!(spend(&limiter, client(1)), 3, "a full budget is the burst");
    }

    #[test]
    fn clients_have_separate_budgets() {
        let (limiter, _) = limiter(30, 2);
        assert_eq!(spend(&limiter, client(1)), 2);
        assert_eq!(spend(&limiter, client(2)), 2);
        assert!(limiter.check(client(1)).is_err());
    }

    #[test]
    fn lookups_that_passed_the_check_together_are_charged_exactly() {
        let (limiter, _) = limiter(60, 2);
        // Five lookups of one client in flight at once: all passed the check first.
        for _ in 0..5 {
            assert!(limiter.check(client(1)).is_ok());
        }
        for _ in 0..5 {
            limiter.charge(client(1));
        }
        assert_eq!(limiter.check(client(1)), Err(Duration::from_secs(1)));
    }

    #[test]
    fn a_zero_rate_turns_the_limit_off() {
        let (limiter, _) = limiter(0, 1);
        assert_eq!(spend(&limiter, client(1)), 1_000);
        assert_eq!(limiter.tracked(), 0);
    }

    #[test]
    fn sweeping_forgets_clients_whose_budget_is_full_again() {
        let (limiter, clock) = limiter(60, 5);
        for n in 0..50 {
            limiter.charge(client(n));
        }
        assert_eq!(limiter.tracked(), 50);
        limiter.sweep();
        assert_eq!(limiter.tracked(), 50, "their budgets are not full yet");
        clock.advance(2);
        limiter.sweep();
        assert_eq!(limiter.tracked(), 0);
    }
}
