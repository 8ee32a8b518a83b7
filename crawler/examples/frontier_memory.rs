//! Memory benchmark for `bench/frontier-memory.sh`: pushes N distinct URLs through the crawler's
//! real frontier (queue + seen-set, the structures a crawl uses), holds them all at once, then
//! drains the queue while re-offering every URL (all must be rejected as seen). Prints the
//! process's peak resident set (VmHWM) before and after.
//!
//! usage: frontier_memory [N]   (default 1000000)

use std::fs;

use cache_preload::bench::{resolve, NormOptions};
use cache_preload::bench::{Frontier, Item, Origin, Push};

fn vm(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn url(i: usize) -> String {
    // WordPress-like permalinks, 60-90 bytes, some with lower-case %xx slugs.
    if i.is_multiple_of(7) {
        format!(
            "https://www.example-shop.com/product/%e6%b0%b4%e6%bb%b4-{i}/?variant={}",
            i % 13
        )
    } else {
        format!(
            "https://www.example-shop.com/{}/{}/post-title-number-{i}/",
            2000 + i % 26,
            1 + i % 12
        )
    }
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let opts = NormOptions::default();
    let base_kb = vm("VmRSS:");
    let mut f = Frontier::new(n, None);
    for i in 0..n {
        let target = resolve(None, &url(i), &opts).expect("valid URL");
        let pushed = f.push(Item {
            target,
            depth: 1,
            origin: Origin::Link,
        });
        assert_eq!(pushed, Push::Queued, "url {i}");
    }
    let full_kb = vm("VmHWM:");
    let queued = f.len();
    let mut drained = 0usize;
    while let Some(item) = f.pop() {
        drained += 1;
        // Re-offering a popped URL must be rejected: the seen-set outlives the queue.
        assert_eq!(f.push(item), Push::Seen);
    }
    assert_eq!(drained, n);
    let peak_kb = vm("VmHWM:");
    println!("urls={n} queued={queued} seen={} rss_before_kb={base_kb} hwm_full_kb={full_kb} hwm_kb={peak_kb}", f.seen_count());
    println!(
        "peak resident: {:.1} MB for {n} URLs ({:.0} bytes/URL above the {:.1} MB process baseline)",
        peak_kb as f64 / 1024.0,
        (peak_kb.saturating_sub(base_kb) * 1024) as f64 / n.max(1) as f64,
        base_kb as f64 / 1024.0
    );
}
