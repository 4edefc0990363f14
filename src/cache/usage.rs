//! `last_used_at` bookkeeping without a database write per request (the writing is
//! `services::usage::flush`).
//!
//! Policy: authentication records the latest use of each key in memory; a background task
//! writes the batch at a bounded interval and once more on graceful shutdown. Responses of this
//! process overlay the pending value, so a caller sees its own use at once. An entry leaves
//! memory only after the database holds it (or something newer), so a response never shows an
//! older value than one it showed before. Writes only ever move `last_used_at` forward, so
//! replicas flushing the same key in any order converge on the latest use. Each use says
//! which table its key lives in (admin keys, project keys), so a flush writes only the tables
//! that have uses pending.

use std::collections::HashMap;
use std::sync::Mutex;

/// A batch of uses to write: `(key id, used at)`.
pub type Uses = Vec<(String, i64)>;

/// Latest uses not yet written to the database, by key id, each with whether it is a
/// project key's.
#[derive(Debug, Default)]
pub struct UsageTracker {
    pending: Mutex<HashMap<String, (i64, bool)>>,
}

impl UsageTracker {
    /// Notes that the admin key `key_id` authenticated a request at `at`.
    pub fn record(&self, key_id: &str, at: i64) {
        self.note(key_id, at, false);
    }

    /// Notes that the project key `key_id` passed a check at `at`.
    pub fn record_project(&self, key_id: &str, at: i64) {
        self.note(key_id, at, true);
    }

    fn note(&self, key_id: &str, at: i64, project: bool) {
        let mut pending = self.lock();
        match pending.get_mut(key_id) {
            Some((latest, _)) => *latest = (*latest).max(at),
            None => {
                pending.insert(key_id.to_owned(), (at, project));
            }
        }
    }

    /// The later of the stored value and a pending use of `key_id`.
    pub fn overlay(&self, key_id: &str, stored: Option<i64>) -> Option<i64> {
        let pending = self.lock().get(key_id).map(|(at, _)| *at);
        stored.max(pending)
    }

    /// How many keys have a use waiting to be written.
    pub fn pending_len(&self) -> usize {
        self.lock().len()
    }

    /// A copy of the pending uses, to write: the admin keys' and the project keys'.
    pub fn pending(&self) -> (Uses, Uses) {
        let (mut admin, mut project) = (Vec::new(), Vec::new());
        for (id, (at, of_project)) in self.lock().iter() {
            let batch = if *of_project {
                &mut project
            } else {
                &mut admin
            };
            batch.push((id.clone(), *at));
        }
        (admin, project)
    }

    /// Forgets the uses of `batch` now that the database holds them, except where a newer use
    /// arrived during the write (it stays for the next flush).
    pub fn written(&self, batch: &[(String, i64)]) {
        let mut pending = self.lock();
        for (id, at) in batch {
            if pending.get(id).is_some_and(|(latest, _)| latest <= at) {
                pending.remove(id);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (i64, bool)>> {
        // A panic while holding this lock cannot leave the map inconsistent: keep going.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
