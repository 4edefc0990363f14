//! A per-client budget for the credential lookups that may find nothing: admin keys while the
//! set of live hashes cannot vouch that a hash is absent, and invite tokens.
//!
//! Why: the key format's checksum is public, so anyone can mint well-formed keys. A key whose
//! hash is not in this process's set of live hashes (`cache::keyset`) is refused without a
//! lookup, and one whose hash is in it is looked up without charge: the set is authoritative.
//! What is left to protect is the database while the set is not: on PostgreSQL while the
//! invalidation listener is down, stuck or reconnecting (the set may miss keys made meanwhile,
//! so hashes not in it are looked up), and while the set is being reloaded. On one replica with
//! a healthy listener, and on SQLite, no admin-key lookup is ever charged. A key made on another
//! replica a moment ago is not a reason to look up either: the request waits for the listener to
//! catch up instead (see `cache`). Invite tokens have no such set, so every acceptance of a token
//! that is not pending is charged.
//!
//! Policy:
//! - A unit is taken *before* the lookup, under one lock, and given back when the lookup found
//!   what it looked for: in any window a client makes at most its budget of lookups that find
//!   nothing, however many run at once. A client with no unit left is answered 429 with
//!   `Retry-After`, and no lookup is made.
//! - Only lookups are charged: a request answered from the caches or the set, and a malformed
//!   credential (refused before any lookup), never touch the limiter.
//! - Tokens a resource server introspects are charged to nobody: the tokens are its users', not
//!   its own, and it is an authenticated caller (see `routes::introspect`).
//! - The budget is a GCRA per [`ClientAddr`]: `burst` lookups at once, refilled at
//!   `per_minute`. Each client is one theoretical arrival time.
//! - Memory: one entry per client with a unit in use; [`LookupLimiter::sweep`] (every
//!   [`SWEEP_INTERVAL`]) drops those whose budget is full again.
//! - Each process keeps its own budgets: N replicas let N times the rate reach the database.
//! - Time comes from the application's [`Clock`] (monotonic in production), so tests refill a
//!   budget by moving their clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::client_addr::ClientAddr;
use crate::clock::Clock;
use crate::metrics::{self, LookupDecision};

/// How often [`LookupLimiter::sweep`] runs.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// How many lookups that find nothing a client may make: `burst` at once, refilled at
/// `per_minute`.
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

/// The budgets of every client; see the module policy.
pub struct LookupLimiter(Option<Limiter>);

struct Limiter {
    /// Each client's theoretical arrival time (monotonic): when its budget is full again.
    budgets: Mutex<HashMap<ClientAddr, Duration>>,
    clock: Arc<dyn Clock>,
    /// The refill interval: what one lookup costs.
    interval: Duration,
    /// How far ahead of now a client's arrival time may run: `burst` intervals.
    tolerance: Duration,
}

/// A unit taken from a client's budget for one lookup; hand it back with
/// [`LookupLimiter::refund`] when the lookup found what it looked for.
#[derive(Debug)]
#[must_use = "a unit that is dropped stays spent"]
pub struct Unit(Option<ClientAddr>);

impl LookupLimiter {
    /// Budgets of `limit` (none when its rate is zero).
    pub fn new(limit: LookupLimit, clock: Arc<dyn Clock>) -> Self {
        if limit.per_minute == 0 {
            return Self(None);
        }
        let interval = Duration::from_secs(60) / limit.per_minute;
        Self(Some(Limiter {
            budgets: Mutex::new(HashMap::new()),
            clock,
            interval,
            tolerance: interval * limit.burst.max(1),
        }))
    }

    /// Before a lookup: takes one unit of `client`'s budget, or `Err(wait)` when it has none
    /// and may look up again after `wait`.
    pub fn take(&self, client: ClientAddr) -> Result<Unit, Duration> {
        let Some(limiter) = &self.0 else {
            return Ok(Unit(None));
        };
        let now = limiter.clock.monotonic();
        let mut budgets = limiter.lock();
        let arrival = budgets.get(&client).copied().unwrap_or(now).max(now) + limiter.interval;
        let ahead = arrival - now;
        if ahead > limiter.tolerance {
            metrics::lookup_decision(LookupDecision::Refused);
            return Err(ahead - limiter.tolerance);
        }
        budgets.insert(client, arrival);
        metrics::lookup_decision(LookupDecision::Allowed);
        Ok(Unit(Some(client)))
    }

    /// After a lookup that found what it looked for: gives `unit` back.
    pub fn refund(&self, unit: Unit) {
        let (Some(limiter), Some(client)) = (&self.0, unit.0) else {
            return;
        };
        metrics::lookup_decision(LookupDecision::Refunded);
        let now = limiter.clock.monotonic();
        let mut budgets = limiter.lock();
        if let Some(arrival) = budgets.get_mut(&client) {
            *arrival = arrival.saturating_sub(limiter.interval);
            if *arrival <= now {
                budgets.remove(&client);
            }
        }
    }

    /// Forgets the clients whose budget is full again (bounding memory; see the module policy).
    pub fn sweep(&self) {
        if let Some(limiter) = &self.0 {
            let now = limiter.clock.monotonic();
            let mut budgets = limiter.lock();
            budgets.retain(|_, arrival| *arrival > now);
            budgets.shrink_to_fit();
        }
    }

    /// Clients with a budget in use (for tests and diagnostics).
    pub fn tracked(&self) -> usize {
        self.0.as_ref().map_or(0, |limiter| limiter.lock().len())
    }
}

impl Limiter {
    fn lock(&self) -> MutexGuard<'_, HashMap<ClientAddr, Duration>> {
        // Every change under this lock is one insert or remove: a panic cannot tear it.
        self.budgets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl std::fmt::Debug for LookupLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("LookupLimiter(off)"),
            Some(limiter) => f
                .debug_struct("LookupLimiter")
                .field("interval", &limiter.interval)
                .field("tracked", &limiter.lock().len())
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
        let limiter =
            LookupLimiter::new(LookupLimit { per_minute, burst }, Arc::new(clock.clone()));
        (limiter, clock)
    }

    /// Takes units of `client` while its budget allows (lookups that find nothing); returns
    /// how many it took.
    fn spend(limiter: &LookupLimiter, client: ClientAddr) -> usize {
        (0..1_000)
            .take_while(|_| limiter.take(client).is_ok())
            .count()
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_one_interval_per_lookup() {
        let (limiter, clock) = limiter(30, 3);
        assert_eq!(spend(&limiter, client(1)), 3);
        assert_eq!(limiter.take(client(1)).unwrap_err(), Duration::from_secs(2));
        clock.advance(1);
        assert_eq!(limiter.take(client(1)).unwrap_err(), Duration::from_secs(1));
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
        assert!(limiter.take(client(1)).is_err());
    }

    #[test]
    fn a_lookup_that_found_its_key_gives_its_unit_back() {
        let (limiter, _) = limiter(30, 2);
        for _ in 0..10 {
            let unit = limiter.take(client(1)).unwrap();
            limiter.refund(unit);
        }
        assert_eq!(spend(&limiter, client(1)), 2);
        assert_eq!(limiter.tracked(), 1);
    }

    #[test]
    fn concurrent_lookups_never_take_more_than_the_budget() {
        let (limiter, _) = limiter(60, 5);
        let limiter = Arc::new(limiter);
        let taken = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for _ in 0..16 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        // A lookup that found nothing: its unit stays spent.
                        if let Ok(_spent) = limiter.take(client(1)) {
                            taken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(taken.into_inner(), 5);
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
            let _spent = limiter.take(client(n)).unwrap();
        }
        assert_eq!(limiter.tracked(), 50);
        limiter.sweep();
        assert_eq!(limiter.tracked(), 50, "their budgets are not full yet");
        clock.advance(2);
        limiter.sweep();
        assert_eq!(limiter.tracked(), 0);
    }
}
