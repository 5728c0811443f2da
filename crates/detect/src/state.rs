//! Bounded state for stateful rules: a two-generation approximate LRU map and sliding-window
//! counters. Memory is capped by entry counts; evicting a key only forgets it.

use std::collections::HashMap;
use std::hash::Hash;

/// A map of at most `cap` entries with approximate LRU eviction: entries live in a current and
/// a previous generation; when the current one fills half the capacity the previous one is
/// dropped. A hit in the previous generation moves the entry to the current one.
#[derive(Debug)]
pub struct BoundedMap<K, V> {
    cur: HashMap<K, V>,
    old: HashMap<K, V>,
    half: usize,
    evicted: u64,
}

impl<K: Hash + Eq, V> BoundedMap<K, V> {
    /// A map holding at most `cap` entries (at least 2).
    pub fn new(cap: usize) -> Self {
        BoundedMap { cur: HashMap::new(), old: HashMap::new(), half: (cap / 2).max(1), evicted: 0 }
    }

    /// The entry for `k`, created with `make` if absent.
    pub fn get_or_insert_with(&mut self, k: K, make: impl FnOnce() -> V) -> &mut V {
        if !self.cur.contains_key(&k) {
            let v = match self.old.remove(&k) {
                Some(v) => v,
                None => make(),
            };
            if self.cur.len() >= self.half {
                self.evicted += self.old.len() as u64;
                self.old = std::mem::take(&mut self.cur);
            }
            return self.cur.entry(k).or_insert(v);
        }
        self.cur.entry(k).or_insert_with(make)
    }

    /// Iterates over all entries.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.cur.iter().chain(self.old.iter())
    }

    /// Whether `k` is present (without touching its recency).
    pub fn contains(&self, k: &K) -> bool {
        self.cur.contains_key(k) || self.old.contains_key(k)
    }

    /// Removes `k`.
    pub fn remove(&mut self, k: &K) -> Option<V> {
        self.cur.remove(k).or_else(|| self.old.remove(k))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.cur.len() + self.old.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries dropped by eviction so far.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

/// A sliding-window event counter for one group: remembers at most `count` recent timestamps
/// (and, for distinct counting, the hashed values).
#[derive(Debug, Default)]
pub struct Window {
    items: Vec<(i64, u64)>,
    /// While the group is silenced after firing: until this time.
    pub silenced_until: i64,
}

impl Window {
    /// Records an event at `t` (with `value` hashed when counting distinct values) and says
    /// whether `count` were seen within `window_us`. The window is cleared when it fires.
    pub fn hit(&mut self, t: i64, value: Option<u64>, count: u32, window_us: i64) -> bool {
        let count = count as usize;
        self.items.retain(|(ts, _)| t - *ts <= window_us && *ts <= t);
        match value {
            Some(h) => {
                if let Some(e) = self.items.iter_mut().find(|(_, v)| *v == h) {
                    e.0 = t;
                } else {
                    self.items.push((t, h));
                }
            }
            None => self.items.push((t, 0)),
        }
        if self.items.len() > count {
            let excess = self.items.len() - count;
            self.items.drain(..excess);
        }
        if self.items.len() >= count && t >= self.silenced_until {
            self.items.clear();
            self.silenced_until = t + window_us;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_map_caps_entries() {
        let mut m = BoundedMap::new(100);
        for i in 0..10_000u32 {
            *m.get_or_insert_with(i, || 0u32) += 1;
            assert!(m.len() <= 100);
        }
        // recently used keys survive
        *m.get_or_insert_with(9_999, || 0) += 1;
        assert_eq!(*m.get_or_insert_with(9_999, || 0), 2);
        assert!(m.evicted() > 9_000);
    }

    #[test]
    fn window_counts_within_time() {
        let mut w = Window::default();
        let s = 1_000_000;
        assert!(!w.hit(0, None, 3, 10 * s));
        assert!(!w.hit(s, None, 3, 10 * s));
        assert!(w.hit(2 * s, None, 3, 10 * s), "third within 10s fires");
        assert!(!w.hit(3 * s, None, 3, 10 * s));
        // spaced out: never fires
        let mut w = Window::default();
        for i in 0..10 {
            assert!(!w.hit(i * 20 * s, None, 3, 10 * s));
        }
        // distinct values
        let mut w = Window::default();
        assert!(!w.hit(0, Some(1), 3, 10 * s));
        assert!(!w.hit(1, Some(1), 3, 10 * s));
        assert!(!w.hit(2, Some(2), 3, 10 * s));
        assert!(w.hit(3, Some(3), 3, 10 * s));
    }
}
