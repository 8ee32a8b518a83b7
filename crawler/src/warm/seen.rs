//! A compact seen-set: 16 bytes per URL instead of the URL itself.
//!
//! Each dedupe key is reduced to a 128-bit MD5 fingerprint and kept in an open-addressing table
//! of `u128`s. For a million URLs that is 16 MB of slots (32 MB at the doubling peak) whatever the
//! URL length, against 100+ MB for a set of `String`s. A false "already seen" needs two distinct
//! URLs with equal 128-bit fingerprints: about 1 in 10^26 for a million URLs.

use super::md5;

/// Marks an empty slot. A real fingerprint equal to it is stored as [`ZERO_STANDIN`].
const EMPTY: u128 = 0;
/// The value fingerprint 0 is mapped to (so it never reads as empty).
const ZERO_STANDIN: u128 = 1;

/// A set of URL fingerprints with linear probing, kept at most 7/8 full.
#[derive(Clone, Debug)]
pub struct SeenSet {
    slots: Vec<u128>,
    len: usize,
}

impl Default for SeenSet {
    fn default() -> Self {
        Self::new()
    }
}

impl SeenSet {
    /// An empty set.
    pub fn new() -> Self {
        SeenSet {
            slots: vec![EMPTY; 1024],
            len: 0,
        }
    }

    /// The fingerprint of a dedupe key.
    pub fn fingerprint(key: &str) -> u128 {
        match u128::from_le_bytes(md5::digest(key.as_bytes())) {
            EMPTY => ZERO_STANDIN,
            f => f,
        }
    }

    /// Adds `key`; `true` if it was not there before.
    pub fn insert(&mut self, key: &str) -> bool {
        self.insert_fingerprint(Self::fingerprint(key))
    }

    /// Whether `key` was added.
    pub fn contains(&self, key: &str) -> bool {
        let f = Self::fingerprint(key);
        let mask = self.slots.len() - 1;
        let mut i = Self::home(f, mask);
        loop {
            match self.slots[i] {
                EMPTY => return false,
                s if s == f => return true,
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Number of distinct keys added.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes held by the table.
    pub fn heap_bytes(&self) -> usize {
        self.slots.len() * std::mem::size_of::<u128>()
    }

    fn home(f: u128, mask: usize) -> usize {
        // MD5 bits are uniform: the low bits are a fine table index.
        (f as usize) & mask
    }

    fn insert_fingerprint(&mut self, f: u128) -> bool {
        if (self.len + 1) * 8 > self.slots.len() * 7 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = Self::home(f, mask);
        loop {
            match self.slots[i] {
                EMPTY => {
                    self.slots[i] = f;
                    self.len += 1;
                    return true;
                }
                s if s == f => return false,
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn grow(&mut self) {
        let doubled = vec![EMPTY; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        self.len = 0;
        for f in old.into_iter().filter(|f| *f != EMPTY) {
            self.insert_fingerprint(f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_contains_and_growth() {
        let mut s = SeenSet::new();
        assert!(s.is_empty());
        for i in 0..10_000 {
            assert!(s.insert(&format!("https://example.com/p/{i}/")));
        }
        for i in 0..10_000 {
            assert!(!s.insert(&format!("https://example.com/p/{i}/")), "{i}");
            assert!(s.contains(&format!("https://example.com/p/{i}/")));
        }
        assert!(!s.contains("https://example.com/p/10000/"));
        assert_eq!(s.len(), 10_000);
        // 10,000 keys at ≤ 7/8 load: 16,384 slots of 16 bytes.
        assert_eq!(s.heap_bytes(), 16_384 * 16);
    }

    #[test]
    fn zero_fingerprint_is_not_empty() {
        let mut s = SeenSet::new();
        assert!(s.insert_fingerprint(ZERO_STANDIN));
        assert!(!s.insert_fingerprint(ZERO_STANDIN));
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn case_of_triplets_makes_distinct_keys() {
        let mut s = SeenSet::new();
        assert!(s.insert("httpsexample.com/p/%e6%b0%b4/"));
        assert!(s.insert("httpsexample.com/p/%E6%B0%B4/"));
    }
}
