//! The time source. Handlers ask the clock in the application state, never the system
//! directly, so tests can move time forward (to expire a key, or refill a rate limit) without
//! sleeping.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of Unix time in seconds, and of monotonic time for measuring intervals.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> i64;

    /// Time since an arbitrary origin on a clock that never goes back (the rate limiter's).
    fn monotonic(&self) -> Duration;
}

/// The wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    fn monotonic(&self) -> Duration {
        static ORIGIN: OnceLock<Instant> = OnceLock::new();
        ORIGIN.get_or_init(Instant::now).elapsed()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(now: i64) -> Self {
        Self(Arc::new(AtomicI64::new(now)))
    }

    pub fn set(&self, now: i64) {
        self.0.store(now, Ordering::SeqCst);
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    /// The Unix time, so advancing this clock also moves monotonic time.
    fn monotonic(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.now()).unwrap_or(0))
    }
}
