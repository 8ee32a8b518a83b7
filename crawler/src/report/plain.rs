//! Plain output: one line per page on stdout and a summary, or on a terminal a progress line
//! with rounded rates, human sizes and an ETA when the total is known. Numbers are written the
//! way wget and curl users read them.

use std::time::Duration;

use super::event::{FailureEvent, PageEvent, Summary, WarmSummary};
use crate::inspect::miss_reason::reasons_line;

/// Human-readable numbers for terminal output.
pub mod human {
    use std::time::Duration;

    /// `812 B`, `44.6 KiB`, `10.6 MiB`, `1.2 GiB`: one decimal below 100, none above.
    pub fn size(bytes: u64) -> String {
        const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
        let mut v = bytes as f64;
        let mut unit = 0;
        while v >= 1024.0 && unit < UNITS.len() - 1 {
            v /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            format!("{bytes} B")
        } else if v < 99.95 {
            format!("{v:.1} {}", UNITS[unit])
        } else {
            format!("{v:.0} {}", UNITS[unit])
        }
    }

    /// `0.4s`, `12s`, `4m 05s`, `1h 02m 03s`.
    pub fn duration(d: Duration) -> String {
        let s = d.as_secs_f64();
        if s < 9.95 {
            return format!("{s:.1}s");
        }
        let t = s.round() as u64;
        match (t / 3600, (t % 3600) / 60, t % 60) {
            (0, 0, s) => format!("{s}s"),
            (0, m, s) => format!("{m}m {s:02}s"),
            (h, m, s) => format!("{h}h {m:02}m {s:02}s"),
        }
    }

    /// A transfer rate: `5.6 MiB/s`.
    pub fn size_rate(bytes: u64, d: Duration) -> String {
        let secs = d.as_secs_f64();
        let per = if secs > 0.0 { bytes as f64 / secs } else { 0.0 };
        format!("{}/s", size(per as u64))
    }

    /// A per-second rate: `196/s`, `12/s`, `3.4/s`, `0.25/s`.
    pub fn rate(per_sec: f64) -> String {
        if !per_sec.is_finite() || per_sec <= 0.0 {
            "0/s".to_owned()
        } else if per_sec >= 9.95 {
            format!("{per_sec:.0}/s")
        } else if per_sec >= 0.995 {
            format!("{per_sec:.1}/s")
        } else {
            format!("{per_sec:.2}/s")
        }
    }
}

/// One line per page: status, time, size, URL (and where it landed).
pub fn page_line(p: &PageEvent<'_>) -> String {
    format!(
        "{} {:>5}ms {:>10} {}{}\n",
        p.status,
        p.elapsed.as_millis(),
        human::size(p.bytes),
        p.url,
        if p.url != p.final_url {
            format!(" -> {}", p.final_url)
        } else {
            String::new()
        }
    )
}

/// A fetch without a final response.
pub fn failure_line(f: &FailureEvent<'_>) -> String {
    format!("ERR {} ({})", f.url, f.message)
}

/// The summary line.
pub fn summary_line(s: &Summary) -> String {
    format!(
        "done: {} ok, {} HTTP errors, {} failed, {} in {} ({} pages, {}){}\n",
        s.ok,
        s.http_errors,
        s.failed,
        human::size(s.bytes),
        human::duration(s.elapsed),
        human::rate(s.pages_per_sec),
        human::size_rate(s.bytes, s.elapsed),
        if s.limit_reached {
            ", limit reached"
        } else {
            ""
        }
    )
}

/// The cache-warming lines after the summary (also written, prefixed, into the wget log):
/// cache counts, variants, `Vary`, verify results, index, nodes, concurrency, notes.
pub fn warm_lines(w: &WarmSummary) -> Vec<String> {
    let i = &w.inspect;
    let header = i.cache_header.as_deref();
    let mut lines = vec![i.cache.summary_line(header)];
    if !w.variants.is_empty() {
        // The cache counts above include these extra requests.
        lines.push(format!(
            "variants: every page also requested as {}",
            w.variants.join("; ")
        ));
    }
    if !i.vary.is_empty() {
        lines.push(format!("vary: responses vary on {}", i.vary.join(", ")));
    }
    if let Some(v) = &i.verify {
        lines.push(format!(
            "verify: {} of {} pages HIT for a visitor, {} still missing",
            v.hit,
            v.checked,
            v.still_missing.len()
        ));
        for m in &v.still_missing {
            lines.push(format!(
                "  still missing: {} ({}): {}",
                m.url,
                m.status,
                reasons_line(&m.reasons)
            ));
        }
    }
    if let Some(c) = &i.index {
        lines.push(format!(
            "index: {} cache files match their key, {} missing or different",
            c.matched, c.missing_or_different
        ));
    }
    if let Some(n) = &i.nodes {
        lines.extend(n.lines(header));
    }
    if let Some(peak) = w.concurrency_peak {
        let cached = if w.concurrency_cap_cached > w.concurrency_cap {
            format!(", {} for cache HITs", w.concurrency_cap_cached)
        } else {
            String::new()
        };
        lines.push(format!(
            "concurrency: adaptive, peak {peak} in flight (cap {}{cached})",
            w.concurrency_cap
        ));
    }
    lines.extend(w.notes.iter().cloned());
    lines
}

/// The progress line: pages (of the known total), rate, queue, bytes and ETA.
pub fn progress_text(
    done: u64,
    total: Option<u64>,
    bytes: u64,
    queued: usize,
    elapsed: Duration,
) -> String {
    let secs = elapsed.as_secs_f64();
    let per_sec = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    let mut s = match total {
        Some(t) => format!("{done}/{} pages", t.max(done)),
        None => format!("{done} pages"),
    };
    s.push_str(&format!(
        " ({}), {queued} queued, {}",
        human::rate(per_sec),
        human::size(bytes)
    ));
    if let Some(t) = total.filter(|t| *t > done && per_sec > 0.0) {
        let left = Duration::from_secs_f64((t - done) as f64 / per_sec);
        s.push_str(&format!(", ETA {}", human::duration(left)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_numbers() {
        assert_eq!(human::size(812), "812 B");
        assert_eq!(human::size(11_122_598), "10.6 MiB");
        assert_eq!(human::size(45_678), "44.6 KiB");
        assert_eq!(human::size(200 << 20), "200 MiB");
        assert_eq!(human::duration(Duration::from_millis(400)), "0.4s");
        assert_eq!(human::duration(Duration::from_secs(12)), "12s");
        assert_eq!(human::duration(Duration::from_secs(245)), "4m 05s");
        assert_eq!(human::duration(Duration::from_secs(3723)), "1h 02m 03s");
        assert_eq!(human::rate(196.4011), "196/s");
        assert_eq!(human::rate(3.44), "3.4/s");
        assert_eq!(human::rate(0.25), "0.25/s");
        assert_eq!(human::rate(0.0), "0/s");
        assert_eq!(
            human::size_rate(11_122_598, Duration::from_secs(2)),
            "5.3 MiB/s"
        );
    }

    #[test]
    fn progress_shows_total_and_eta_when_known() {
        let t = Duration::from_secs_f64(1.8584);
        assert_eq!(
            progress_text(365, None, 11_122_598, 46, t),
            "365 pages (196/s), 46 queued, 10.6 MiB"
        );
        assert_eq!(
            progress_text(365, Some(1200), 11_122_598, 46, t),
            "365/1200 pages (196/s), 46 queued, 10.6 MiB, ETA 4.3s"
        );
    }

    #[test]
    fn warm_lines_from_the_typed_summary() {
        use crate::inspect::session::Session;
        let mut s = Session::new(Some("X-FastCGI-Cache"), None, None);
        s.observe(
            &[("X-FastCGI-Cache", "MISS"), ("Vary", "Accept-Encoding")],
            None,
        );
        s.verify_result("http://e/a/", 200, &[("X-FastCGI-Cache", "HIT")]);
        s.verify_result(
            "http://e/c/",
            200,
            &[("X-FastCGI-Cache", "MISS"), ("Set-Cookie", "a=1")],
        );
        let w = WarmSummary {
            inspect: s.summary(Some((1, 0))),
            concurrency_peak: Some(4),
            concurrency_cap: 6,
            ..WarmSummary::default()
        };
        assert_eq!(
            warm_lines(&w),
            [
                "cache: 1 MISS (header X-FastCGI-Cache)",
                "vary: responses vary on accept-encoding",
                "verify: 1 of 2 pages HIT for a visitor, 1 still missing",
                "  still missing: http://e/c/ (MISS): Set-Cookie (nginx does not store responses that set cookies)",
                "index: 1 cache files match their key, 0 missing or different",
                "concurrency: adaptive, peak 4 in flight (cap 6)",
            ]
        );
    }
}
