//! The set of live key hashes: which hashes the database holds, without asking it.
//!
//! Policy: every stored key's hash (admin keys and project keys alike) is in the set, by its 64-bit prefix (the first 8 bytes of
//! its SHA-256, [`HashPrefix`]). A presented key whose prefix is not in the set is refused
//! without a lookup; one whose prefix is in it is looked up (a prefix shared by an invented
//! key and a stored one is a 2^-64 chance per stored key, and cannot be aimed at: finding a
//! key with a given prefix is a preimage attack on SHA-256). The set holds disabled and expired
//! keys too, so that they are refused with their own reason.
//!
//! The table is an open-addressing hash set of `u64` with linear probing: a prefix is already
//! uniform, so it is its own hash (its slot is `prefix * slots / 2^64`), and a slot is 8 bytes.
//! Deletion shifts the probe chain back (no tombstones). The table is kept between
//! [`MIN_LOAD`] and [`MAX_LOAD`] full: at most 8 / 0.6 ≈ 13.4 bytes per key once sized, so
//! 13.4 MB per million keys (measured in `bench/RESULTS.md`).

use diesel::QueryResult;

use crate::db::DbConnection;
use crate::domain::secret::KeyDigest;
use crate::models::{admin_api_key, project_api_key};

/// Hashes read per query when the set is loaded.
pub const LOAD_PAGE: i64 = 10_000;

/// The first 8 bytes of a key's SHA-256, big-endian: what the set holds.
pub type HashPrefix = u64;

/// The load a table is sized to when it is built or grown.
pub const MIN_LOAD: f64 = 0.6;
/// The load past which the table grows.
pub const MAX_LOAD: f64 = 0.85;

/// The prefix of `digest`.
pub fn prefix_of(digest: &KeyDigest) -> HashPrefix {
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// The prefix of a stored hash in hex (`key_hash`); `None` if it is not hex.
pub fn prefix_of_hex(key_hash: &str) -> Option<HashPrefix> {
    let first = key_hash.get(..16)?;
    if !first.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(first, 16).ok()
}

/// Reads every stored key's hash (admin keys and project keys), page by page on each table's
/// `key_hash` index, into a set sized for the table (so the load allocates the set once, and a
/// page of hashes at a time besides). Not one snapshot: a key made or deleted during the load
/// is reconciled by its invalidation, applied after.
pub fn load(conn: &mut DbConnection) -> QueryResult<KeySet> {
    let stored = admin_api_key::count(conn)? + project_api_key::count(conn)?;
    let mut set = KeySet::with_capacity(usize::try_from(stored).unwrap_or(0));
    load_table(conn, &mut set, admin_api_key::hashes_page)?;
    load_table(conn, &mut set, project_api_key::hashes_page)?;
    Ok(set)
}

type HashesPage = fn(&mut DbConnection, Option<&str>, i64) -> QueryResult<Vec<String>>;

fn load_table(conn: &mut DbConnection, set: &mut KeySet, page_of: HashesPage) -> QueryResult<()> {
    let mut after: Option<String> = None;
    loop {
        let page = page_of(conn, after.as_deref(), LOAD_PAGE)?;
        // A hash that is not hex was not written by this service, and no key can match it.
        for prefix in page.iter().filter_map(|hash| prefix_of_hex(hash)) {
            set.insert(prefix);
        }
        if page.len() < LOAD_PAGE as usize {
            return Ok(());
        }
        after = page.last().cloned();
    }
}

/// A set of hash prefixes; see the module policy.
#[derive(Clone, Default)]
pub struct KeySet {
    /// Zero marks an empty slot; the prefix zero is kept in `has_zero` instead.
    slots: Box<[u64]>,
    /// Prefixes in `slots`.
    len: usize,
    has_zero: bool,
}

impl KeySet {
    /// A set of `prefixes` (duplicates count once), sized for them.
    pub fn from_prefixes(prefixes: &[HashPrefix]) -> Self {
        let mut set = Self::with_capacity(prefixes.len());
        for &prefix in prefixes {
            set.insert(prefix);
        }
        set
    }

    /// An empty set with room for `keys` before it grows.
    pub fn with_capacity(keys: usize) -> Self {
        Self {
            slots: vec![0; slots_for(keys)].into_boxed_slice(),
            len: 0,
            has_zero: false,
        }
    }

    /// Prefixes in the set.
    pub fn len(&self) -> usize {
        self.len + usize::from(self.has_zero)
    }

    /// True when the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the set holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    /// True when `prefix` is in the set.
    pub fn contains(&self, prefix: HashPrefix) -> bool {
        if prefix == 0 {
            return self.has_zero;
        }
        if self.slots.is_empty() {
            return false;
        }
        let mut i = self.home(prefix);
        loop {
            match self.slots[i] {
                0 => return false,
                slot if slot == prefix => return true,
                _ => i = self.next(i),
            }
        }
    }

    /// Adds `prefix`; false if it was there already.
    pub fn insert(&mut self, prefix: HashPrefix) -> bool {
        if prefix == 0 {
            return !std::mem::replace(&mut self.has_zero, true);
        }
        if (self.len + 1) as f64 > self.slots.len() as f64 * MAX_LOAD {
            self.grow();
        }
        let mut i = self.home(prefix);
        loop {
            match self.slots[i] {
                0 => {
                    self.slots[i] = prefix;
                    self.len += 1;
                    return true;
                }
                slot if slot == prefix => return false,
                _ => i = self.next(i),
            }
        }
    }

    /// Removes `prefix`; false if it was not there.
    pub fn remove(&mut self, prefix: HashPrefix) -> bool {
        if prefix == 0 {
            return std::mem::replace(&mut self.has_zero, false);
        }
        if self.slots.is_empty() {
            return false;
        }
        let mut hole = self.home(prefix);
        loop {
            match self.slots[hole] {
                0 => return false,
                slot if slot == prefix => break,
                _ => hole = self.next(hole),
            }
        }
        // Shift back the entries after the hole that probed past it, so no probe chain
        // breaks at the hole (Knuth's algorithm R).
        let n = self.slots.len();
        let mut j = hole;
        loop {
            j = self.next(j);
            let slot = self.slots[j];
            if slot == 0 {
                break;
            }
            let home = self.home(slot);
            // `slot` may fill the hole when the hole lies on its probe path: from its home
            // to where it sits (cyclically).
            if (j + n - home) % n >= (j + n - hole) % n {
                self.slots[hole] = slot;
                hole = j;
            }
        }
        self.slots[hole] = 0;
        self.len -= 1;
        true
    }

    fn home(&self, prefix: HashPrefix) -> usize {
        ((u128::from(prefix) * self.slots.len() as u128) >> 64) as usize
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() { 0 } else { i + 1 }
    }

    fn grow(&mut self) {
        let mut bigger = Self::with_capacity(self.len + 1);
        bigger.has_zero = self.has_zero;
        for &slot in self.slots.iter().filter(|slot| **slot != 0) {
            bigger.insert(slot);
        }
        *self = bigger;
    }
}

/// Slots for `keys` at [`MIN_LOAD`] (at least 8).
fn slots_for(keys: usize) -> usize {
    ((keys as f64 / MIN_LOAD).ceil() as usize).max(8)
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("len", &self.len())
            .field("slots", &self.slots.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    /// A deterministic stream of uniform-looking u64s (splitmix64).
    fn uniform(seed: u64) -> impl Iterator<Item = u64> {
        let mut state = seed;
        std::iter::from_fn(move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            Some(z ^ (z >> 31))
        })
    }

    #[test]
    fn prefixes_are_the_first_eight_bytes_in_hex_or_binary() {
        let mut digest = [0; 32];
        digest[..8].copy_from_slice(&[0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef]);
        assert_eq!(prefix_of(&digest), 0x0123_4567_89ab_cdef);
        let hex = crate::domain::secret::hex(&digest);
        assert_eq!(prefix_of_hex(&hex), Some(0x0123_4567_89ab_cdef));
        assert_eq!(prefix_of_hex("0123"), None, "too short");
        assert_eq!(
            prefix_of_hex("+123456789abcdef0"),
            None,
            "a sign is not hex"
        );
        assert_eq!(prefix_of_hex("0123456789abcdeg"), None, "not hex");
    }

    #[test]
    fn the_set_agrees_with_a_hash_set_through_inserts_and_removals() {
        let mut set = KeySet::default();
        let mut model = HashSet::new();
        // A narrow range of values makes for long probe chains, collisions and wrap-around.
        let values: Vec<u64> = uniform(7).take(4_000).collect();
        let narrow: Vec<u64> = (0..200u64).map(|n| u64::MAX - n * 3).collect();
        for (step, value) in values.iter().chain(&narrow).chain(&[0, 1]).enumerate() {
            assert_eq!(set.insert(*value), model.insert(*value), "insert {step}");
            if step % 3 == 0 {
                let victim = values[step / 2];
                assert_eq!(set.remove(victim), model.remove(&victim), "remove {step}");
            }
        }
        assert_eq!(set.len(), model.len());
        for value in values.iter().chain(&narrow).chain(&[0, 1, 2]) {
            assert_eq!(set.contains(*value), model.contains(value), "{value}");
        }
        for value in model.clone() {
            assert!(set.remove(value));
        }
        assert!(set.is_empty());
        assert!(values.iter().all(|value| !set.contains(*value)));
    }

    #[test]
    fn a_set_of_a_million_keys_takes_at_most_16_mb() {
        let prefixes: Vec<u64> = uniform(1).take(1_000_000).collect();
        let mut set = KeySet::from_prefixes(&prefixes);
        assert_eq!(set.len(), 1_000_000);
        let loaded = set.heap_bytes();
        // Keys created after the load grow it; the worst case is just before it grows.
        for prefix in uniform(2).take(500_000) {
            set.insert(prefix);
        }
        let per_million_after_growth = set.heap_bytes() * 1_000_000 / set.len();
        println!(
            "key set: {loaded} bytes for 1,000,000 keys loaded; {per_million_after_growth} bytes per million after 500,000 inserts"
        );
        assert!(loaded <= 16_000_000, "{loaded} bytes");
        assert!(per_million_after_growth <= 16_000_000);
        assert!(prefixes.iter().all(|prefix| set.contains(*prefix)));
    }
}
