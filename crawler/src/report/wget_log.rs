//! GNU wget `--no-verbose` log lines and the FINISHED summary, in exactly
//! the shapes NPP's parsers expect (npp-usage.md §3.2 and §7.2). Every
//! function returns complete lines ending in `\n`, English only, with
//! local-time timestamps (`TZ` is honoured).

use std::time::Duration;

/// `YYYY-MM-DD HH:MM:SS` in local time.
pub fn timestamp() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A successful fetch:
/// `<ts> URL:<url> [<bytes>/<length>] -> "-" [<try>]`, or `[<bytes>]` when
/// the length is unknown. The local path is `"-"`: nothing is written.
pub fn success(ts: &str, url: &str, bytes: u64, content_length: Option<u64>, tries: u32) -> String {
    match content_length {
        Some(len) => format!("{ts} URL:{url} [{bytes}/{len}] -> \"-\" [{tries}]\n"),
        None => format!("{ts} URL:{url} [{bytes}] -> \"-\" [{tries}]\n"),
    }
}

/// An HTTP error: `<url>:` then `<ts> ERROR <code>: <reason>.`
pub fn http_error(ts: &str, url: &str, code: u16, reason: &str) -> String {
    format!("{url}:\n{ts} ERROR {code}: {reason}.\n")
}

/// A failure without an HTTP status (network, redirect): `<url>:` then
/// `<ts> ERROR: <message>.` — deliberately without a status number, so it
/// is never counted as a 404.
pub fn failure(ts: &str, url: &str, message: &str) -> String {
    let msg = message.trim_end_matches('.');
    format!("{url}:\n{ts} ERROR: {msg}.\n")
}

/// The three summary lines.
pub fn summary(ts: &str, wall: Duration, files: u64, bytes: u64, download: Duration) -> String {
    format!(
        "FINISHED --{ts}--\nTotal wall clock time: {}\nDownloaded: {files} files, {} in {}s ({})\n",
        wall_clock(wall),
        human_size(bytes),
        decimal(download.as_secs_f64()),
        rate(bytes, download)
    )
}

/// wget-style short decimal: one decimal below 10, none above.
fn decimal(v: f64) -> String {
    if v < 10.0 {
        let s = format!("{v:.1}");
        // 9.96 would print as "10.0": keep it integral like wget.
        if s == "10.0" {
            "10".to_string()
        } else {
            s
        }
    } else {
        format!("{v:.0}")
    }
}

/// `12s`, `2.3s`, `4m 5s`, `1h 4m 5s`; hours keep counting past a day so
/// the value always ends with a seconds part.
pub fn wall_clock(d: Duration) -> String {
    let secs_f = d.as_secs_f64();
    if secs_f < 60.0 {
        let s = decimal(secs_f);
        if s == "60" {
            return "1m 0s".to_string();
        }
        return format!("{s}s");
    }
    let total = (secs_f + 0.5) as u64;
    let (h, m, s) = (total / 3600, (total % 3600) / 60, total % 60);
    if h > 0 {
        format!("{h}h {m}m {s}s")
    } else {
        format!("{m}m {s}s")
    }
}

/// Size with a K, M or G suffix (NPP's regex requires one of them).
pub fn human_size(bytes: u64) -> String {
    let b = bytes as f64;
    let (v, unit) = if b < 1024.0 * 1024.0 {
        (b / 1024.0, 'K')
    } else if b < 1024.0 * 1024.0 * 1024.0 {
        (b / (1024.0 * 1024.0), 'M')
    } else {
        (b / (1024.0 * 1024.0 * 1024.0), 'G')
    };
    format!("{}{unit}", decimal(v))
}

/// Transfer rate like `450 KB/s` (wget's units and precision).
pub fn rate(bytes: u64, d: Duration) -> String {
    let secs = d.as_secs_f64().max(1e-6);
    let mut r = bytes as f64 / secs;
    let mut unit = 0;
    const UNITS: [&str; 4] = ["B/s", "KB/s", "MB/s", "GB/s"];
    while r >= 1024.0 && unit < 3 {
        r /= 1024.0;
        unit += 1;
    }
    let prec = if r >= 99.95 {
        0
    } else if r >= 9.995 {
        1
    } else {
        2
    };
    format!("{r:.prec$} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let ts = "2026-04-28 10:00:01";
        assert_eq!(
            success(ts, "https://e.com/", 48211, Some(48211), 1),
            "2026-04-28 10:00:01 URL:https://e.com/ [48211/48211] -> \"-\" [1]\n"
        );
        assert_eq!(
            success(ts, "https://e.com/a/", 30522, None, 2),
            "2026-04-28 10:00:01 URL:https://e.com/a/ [30522] -> \"-\" [2]\n"
        );
        assert_eq!(
            http_error(ts, "https://e.com/old/", 404, "Not Found"),
            "https://e.com/old/:\n2026-04-28 10:00:01 ERROR 404: Not Found.\n"
        );
        assert_eq!(
            failure(ts, "https://e.com/x", "connection failed."),
            "https://e.com/x:\n2026-04-28 10:00:01 ERROR: connection failed.\n"
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(wall_clock(Duration::from_millis(2300)), "2.3s");
        assert_eq!(wall_clock(Duration::from_secs(12)), "12s");
        assert_eq!(wall_clock(Duration::from_secs(245)), "4m 5s");
        assert_eq!(wall_clock(Duration::from_secs(3845)), "1h 4m 5s");
        assert_eq!(wall_clock(Duration::from_secs(90_061)), "25h 1m 1s");
        assert_eq!(human_size(0), "0.0K");
        assert_eq!(human_size(77 * 1024), "77K");
        assert_eq!(human_size(18 * 1024 * 1024), "18M");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0G");
        assert_eq!(rate(450 * 1024 * 41, Duration::from_secs(41)), "450 KB/s");
        assert_eq!(rate(0, Duration::ZERO), "0.00 B/s");
        let s = summary(
            "2026-04-28 10:00:04",
            Duration::from_millis(3100),
            2,
            78848,
            Duration::from_millis(400),
        );
        assert_eq!(
            s,
            "FINISHED --2026-04-28 10:00:04--\nTotal wall clock time: 3.1s\nDownloaded: 2 files, 77K in 0.4s (192 KB/s)\n"
        );
    }
}
