//! Short-lived caches of what every alert reads before it is written: its response plan's
//! document and `muster:` settings. (The integration its key opens is read every time, so
//! that a revocation applies at once.)
//!
//! An entry is used for at most [`TTL`], and not at all once this process has changed what
//! it holds (the writer calls [`Cached::invalidate`], which outdates every entry): a change
//! made through this instance applies to the next alert; one made through another instance
//! sharing the database applies within a second.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long an entry is used.
pub(crate) const TTL: Duration = Duration::from_secs(1);
/// Entries kept at most (all are dropped when it is reached).
const MAX_ENTRIES: usize = 4096;

pub(crate) struct Cached<K, V> {
    entries: Mutex<HashMap<K, (V, Instant, u64)>>,
    generation: AtomicU64,
}

impl<K, V> Default for Cached<K, V> {
    fn default() -> Self {
        Cached {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Cached<K, V> {
    /// The value of `key` if it was loaded less than [`TTL`] ago and nothing was invalidated
    /// since.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let generation = self.generation.load(Ordering::Acquire);
        let entries = self.entries.lock().ok()?;
        match entries.get(key) {
            Some((v, at, g)) if *g == generation && at.elapsed() < TTL => Some(v.clone()),
            _ => None,
        }
    }

    /// The generation to give [`Cached::put`]: read it BEFORE loading the value, so that a
    /// change made while it loads outdates it.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn put(&self, key: K, value: V, generation: u64) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key, (value, Instant::now(), generation));
        }
    }

    /// Outdates every entry (after a write to what they hold).
    pub(crate) fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_used_until_invalidated() {
        let c: Cached<&str, u32> = Cached::default();
        assert_eq!(c.get(&"a"), None);
        let g = c.generation();
        c.put("a", 1, g);
        assert_eq!(c.get(&"a"), Some(1));
        c.invalidate();
        assert_eq!(c.get(&"a"), None);
        // Loaded before a change, stored after it: never used.
        let before = c.generation();
        c.invalidate();
        c.put("a", 2, before);
        assert_eq!(c.get(&"a"), None);
        let now = c.generation();
        c.put("a", 3, now);
        assert_eq!(c.get(&"a"), Some(3));
    }

    #[test]
    fn entries_expire() {
        let c: Cached<&str, u32> = Cached::default();
        let g = c.generation();
        c.put("a", 1, g);
        c.entries.lock().unwrap().get_mut("a").unwrap().1 = Instant::now() - TTL;
        assert_eq!(c.get(&"a"), None);
    }
}
