//! The crawl frontier: a bounded FIFO queue plus a seen-set keyed on the
//! exact cache-key material (scheme, lower-case host, port and the
//! request-target bytes), stored as 128-bit hashes so a million URLs cost
//! tens of megabytes, not gigabytes.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};

use url::Url;

use crate::discover::norm::Target;

/// How a URL entered the crawl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A start URL from the command line.
    Start,
    /// Found in a sitemap.
    Sitemap,
    /// Read from a URL list.
    List,
    /// Found as a link in a page.
    Link,
}

/// A queued URL.
#[derive(Debug, Clone)]
pub struct Item {
    /// What to request.
    pub target: Target,
    /// Link hops from the seed it was found from.
    pub depth: u32,
    /// Where it came from.
    pub origin: Origin,
}

/// Result of [`Frontier::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Added to the queue.
    Queued,
    /// Already seen (queued or fetched before).
    Seen,
    /// The queue is full; the URL was dropped.
    Full,
    /// Its path pattern reached `max_per_pattern`; dropped.
    PatternCap,
}

/// A queued URL in compact form: the serialized URL only (a parsed `Url` plus a separate
/// request-target string cost about 270 bytes per entry; this is about 100), rebuilt on pop.
/// `norm::resolve` guarantees the serialization re-parses to the same path and query.
#[derive(Debug)]
struct Queued {
    url: Box<str>,
    depth: u32,
    origin: Origin,
}

impl Queued {
    fn from_item(item: Item) -> Self {
        Queued {
            url: String::from(item.target.url).into_boxed_str(),
            depth: item.depth,
            origin: item.origin,
        }
    }

    fn into_item(self) -> Option<Item> {
        let url = Url::parse(&self.url).ok()?;
        let mut request_target = url.path().to_string();
        if let Some(q) = url.query() {
            request_target.push('?');
            request_target.push_str(q);
        }
        Some(Item {
            target: Target {
                url,
                request_target,
            },
            depth: self.depth,
            origin: self.origin,
        })
    }
}

/// Bounded queue and seen-set.
#[derive(Debug)]
pub struct Frontier {
    queue: VecDeque<Queued>,
    seen: HashSet<u128>,
    patterns: HashMap<u64, u64>,
    max_queue: usize,
    max_per_pattern: Option<u64>,
    /// URLs dropped because the queue was full.
    pub dropped_full: u64,
    /// URLs dropped by the per-pattern cap.
    pub dropped_pattern: u64,
}

/// The 128-bit dedupe key of a target: scheme, lower-case host, port and
/// request-target bytes (the material nginx builds its cache key from).
pub fn key(t: &Target) -> u128 {
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        salt.hash(&mut h);
        t.scheme().hash(&mut h);
        t.host().to_ascii_lowercase().hash(&mut h);
        t.port().hash(&mut h);
        t.request_target.as_bytes().hash(&mut h);
        h.finish()
    };
    (u128::from(half(0)) << 64) | u128::from(half(1))
}

/// The crawl-trap pattern of a target: host plus request-target with every
/// run of digits collapsed to one `0` (so `/cal/2031/07/` and `/cal/1999/01/`
/// share a pattern).
pub fn pattern(t: &Target) -> u64 {
    let mut h = DefaultHasher::new();
    t.host().hash(&mut h);
    let mut in_digits = false;
    for b in t.request_target.bytes() {
        if b.is_ascii_digit() {
            if !in_digits {
                b'0'.hash(&mut h);
            }
            in_digits = true;
        } else {
            in_digits = false;
            b.hash(&mut h);
        }
    }
    h.finish()
}

impl Frontier {
    /// An empty frontier.
    pub fn new(max_queue: usize, max_per_pattern: Option<u64>) -> Self {
        Frontier {
            queue: VecDeque::new(),
            seen: HashSet::new(),
            patterns: HashMap::new(),
            max_queue: max_queue.max(1),
            max_per_pattern,
            dropped_full: 0,
            dropped_pattern: 0,
        }
    }

    /// Mark a target as seen without queueing it (e.g. a redirect's final
    /// URL). Returns true if it was new.
    pub fn mark_seen(&mut self, t: &Target) -> bool {
        self.seen.insert(key(t))
    }

    /// True if the target was seen before.
    pub fn is_seen(&self, t: &Target) -> bool {
        self.seen.contains(&key(t))
    }

    /// Queue an item unless seen, capped or the queue is full.
    pub fn push(&mut self, item: Item) -> Push {
        let k = key(&item.target);
        if self.seen.contains(&k) {
            return Push::Seen;
        }
        if self.queue.len() >= self.max_queue {
            self.dropped_full += 1;
            return Push::Full;
        }
        if let Some(cap) = self.max_per_pattern {
            let n = self.patterns.entry(pattern(&item.target)).or_insert(0);
            if *n >= cap {
                self.dropped_pattern += 1;
                return Push::PatternCap;
            }
            *n += 1;
        }
        self.seen.insert(k);
        self.queue.push_back(Queued::from_item(item));
        Push::Queued
    }

    /// Next item, FIFO (breadth-first, like wget).
    pub fn pop(&mut self) -> Option<Item> {
        // A serialization that no longer parses cannot happen (it was parsed once already);
        // such an entry would be skipped rather than end the crawl.
        while let Some(q) = self.queue.pop_front() {
            if let Some(item) = q.into_item() {
                return Some(item);
            }
        }
        None
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// True if nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Distinct targets seen so far.
    pub fn seen_count(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::norm::{resolve, NormOptions};

    fn item(u: &str) -> Item {
        Item {
            target: resolve(None, u, &NormOptions::default()).unwrap(),
            depth: 0,
            origin: Origin::Link,
        }
    }

    #[test]
    fn dedupe_on_cache_key_material() {
        let mut f = Frontier::new(10, None);
        assert_eq!(f.push(item("http://E.com/a")), Push::Queued);
        assert_eq!(f.push(item("http://e.com:80/a#x")), Push::Seen);
        assert_eq!(f.push(item("https://e.com/a")), Push::Queued);
        assert_eq!(f.push(item("http://e.com/%61")), Push::Queued);
        assert_eq!(f.push(item("http://e.com/p/%e6")), Push::Queued);
        assert_eq!(f.push(item("http://e.com/p/%E6")), Push::Queued);
        assert_eq!(f.len(), 5);
        assert_eq!(f.pop().unwrap().target.url.as_str(), "http://e.com/a");
    }

    #[test]
    fn compact_queue_gives_back_identical_targets() {
        let mut f = Frontier::new(10, None);
        for u in [
            "http://e.com/p/%e6%b0%b4/?q=%E6&x=%2f",
            "https://xn--bcher-kva.example/a/b?",
            "http://e.com:8080/a%20b/c?d=%20e",
            "http://E.com/%7euser/",
        ] {
            let it = item(u);
            let want = it.target.clone();
            assert_eq!(f.push(it), Push::Queued);
            assert_eq!(f.pop().unwrap().target, want, "{u}");
        }
    }

    #[test]
    fn bounded() {
        let mut f = Frontier::new(2, None);
        f.push(item("http://e.com/1"));
        f.push(item("http://e.com/2"));
        assert_eq!(f.push(item("http://e.com/3")), Push::Full);
        assert_eq!(f.dropped_full, 1);
        let mut f = Frontier::new(100, Some(2));
        assert_eq!(f.push(item("http://e.com/cal/2024/01/")), Push::Queued);
        assert_eq!(f.push(item("http://e.com/cal/2024/02/")), Push::Queued);
        assert_eq!(f.push(item("http://e.com/cal/1999/3/")), Push::PatternCap);
        assert_eq!(f.push(item("http://e.com/other/")), Push::Queued);
    }
}
