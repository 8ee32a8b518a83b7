//! Reporting: routes crawl events to the selected output — the wget log,
//! JSON lines, plain lines, or a progress bar on a terminal. Every line is
//! flushed at once, and write errors (a closed pipe) are ignored rather than
//! turned into panics.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Output;
use crate::crawl::{PageEvent, Summary};
use crate::fetch::Failure;
use crate::json;
use crate::log::wget_log;

/// The event sink of a crawl.
pub struct Reporter {
    output: Output,
    bar: Option<ProgressBar>,
    started: Instant,
    /// Final responses so far (for the bar).
    done: u64,
    /// Body bytes so far (for the bar).
    bytes: u64,
    /// Pages known to exist (seeded from a sitemap), if known.
    total: Option<u64>,
}

/// Human-readable numbers for terminal output, as wget and curl users read them.
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

fn out_line(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

fn err_line(s: &str) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(s.as_bytes());
    let _ = e.flush();
}

fn json_line(v: &serde_json::Value) {
    out_line(&format!("{v}\n"));
}

impl Reporter {
    /// A reporter for `output`; the bar is shown only for plain output when
    /// stderr is a terminal.
    pub fn new(output: Output) -> Self {
        let bar = match output {
            Output::Plain { progress: true } if std::io::stderr().is_terminal() => {
                let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
                // indicatif's own {per_sec} prints four decimals; the message is ours.
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.enable_steady_tick(Duration::from_millis(200));
                Some(bar)
            }
            _ => None,
        };
        Reporter {
            output,
            bar,
            started: Instant::now(),
            done: 0,
            bytes: 0,
            total: None,
        }
    }

    /// The number of pages known before the crawl starts (sitemap seeding): the bar then shows
    /// `done/total` and an ETA.
    pub fn set_total(&mut self, total: u64) {
        self.total = Some(total);
    }

    /// The bar's text: pages (of the known total), rate, queue, bytes and ETA.
    pub fn progress_text(&self, queued: usize, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64();
        let per_sec = if secs > 0.0 {
            self.done as f64 / secs
        } else {
            0.0
        };
        let mut s = match self.total {
            Some(t) => format!("{}/{} pages", self.done, t.max(self.done)),
            None => format!("{} pages", self.done),
        };
        s.push_str(&format!(
            " ({}), {} queued, {}",
            human::rate(per_sec),
            queued,
            human::size(self.bytes)
        ));
        if let Some(t) = self.total.filter(|t| *t > self.done && per_sec > 0.0) {
            let left = Duration::from_secs_f64((t - self.done) as f64 / per_sec);
            s.push_str(&format!(", ETA {}", human::duration(left)));
        }
        s
    }

    /// A page got a final response (2xx or an HTTP error).
    pub fn page(&mut self, p: &PageEvent<'_>, queued: usize) {
        match self.output {
            Output::Quiet => {}
            Output::WgetLog => {
                let ts = wget_log::timestamp();
                if (200..300).contains(&p.status) {
                    err_line(&wget_log::success(
                        &ts,
                        p.final_url,
                        p.bytes,
                        p.content_length,
                        p.tries,
                    ));
                } else {
                    err_line(&wget_log::http_error(&ts, p.final_url, p.status, p.reason));
                }
            }
            Output::Json => json_line(&json::page(p)),
            Output::Plain { .. } => {
                self.done += 1;
                self.bytes += p.bytes;
                let line = format!(
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
                );
                match &self.bar {
                    Some(bar) => {
                        bar.inc(1);
                        bar.set_message(self.progress_text(queued, self.started.elapsed()));
                        if !(200..300).contains(&p.status) {
                            bar.println(line.trim_end());
                        }
                    }
                    None => out_line(&line),
                }
            }
        }
    }

    /// A fetch failed without a final response.
    pub fn failure(&mut self, f: &Failure, depth: u32) {
        match self.output {
            Output::Quiet => {}
            Output::WgetLog => err_line(&wget_log::failure(
                &wget_log::timestamp(),
                f.requested.url.as_str(),
                &f.message,
            )),
            Output::Json => json_line(&json::failure(f, depth)),
            Output::Plain { .. } => {
                let line = format!("ERR {} ({})", f.requested.url, f.message);
                match &self.bar {
                    Some(bar) => bar.println(&line),
                    None => out_line(&format!("{line}\n")),
                }
            }
        }
    }

    /// Informational message (never in the wget log's parsed shapes).
    pub fn notice(&mut self, msg: &str) {
        match self.output {
            Output::Quiet => {}
            // wget prints its own notices on stderr too; none of NPP's
            // patterns match a line starting with "cache-preload:".
            Output::WgetLog => err_line(&format!("cache-preload: {msg}\n")),
            Output::Json => json_line(&json::notice(msg)),
            Output::Plain { .. } => match &self.bar {
                Some(bar) => bar.println(format!("cache-preload: {msg}")),
                None => err_line(&format!("cache-preload: {msg}\n")),
            },
        }
    }

    /// End of a normal run.
    pub fn summary(&mut self, s: &Summary) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.output == Output::WgetLog {
            // Before FINISHED, as "cache-preload: " notices that NPP's parsers ignore.
            for l in &s.warm_lines {
                err_line(&format!("cache-preload: {l}\n"));
            }
        }
        match self.output {
            Output::Quiet => {}
            Output::WgetLog => err_line(&wget_log::summary(
                &wget_log::timestamp(),
                s.elapsed,
                s.ok,
                s.bytes,
                s.elapsed,
            )),
            Output::Json => json_line(&json::summary(s)),
            Output::Plain { .. } => {
                out_line(&format!(
                    "done: {} ok, {} HTTP errors, {} failed, {} in {} ({} pages, {}){}\n",
                    s.ok,
                    s.http_errors,
                    s.failed,
                    human::size(s.bytes),
                    human::duration(s.elapsed),
                    human::rate(s.pages_per_sec()),
                    human::size_rate(s.bytes, s.elapsed),
                    if s.limit_reached {
                        ", limit reached"
                    } else {
                        ""
                    }
                ));
                for l in &s.warm_lines {
                    out_line(&format!("{l}\n"));
                }
            }
        }
    }
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
        let mut r = Reporter::new(Output::Quiet);
        r.done = 365;
        r.bytes = 11_122_598;
        assert_eq!(
            r.progress_text(46, Duration::from_secs_f64(1.8584)),
            "365 pages (196/s), 46 queued, 10.6 MiB"
        );
        r.set_total(1200);
        assert_eq!(
            r.progress_text(46, Duration::from_secs_f64(1.8584)),
            "365/1200 pages (196/s), 46 queued, 10.6 MiB, ETA 4.3s"
        );
    }
}
