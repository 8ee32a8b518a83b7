//! Reporting: routes crawl events to the selected output — the wget log,
//! JSON lines, plain lines, or a progress bar on a terminal. Every line is
//! flushed at once, and write errors (a closed pipe) are ignored rather than
//! turned into panics.

use std::io::{IsTerminal, Write};
use std::time::Duration;

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
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {elapsed_precise} {pos} pages ({per_sec}) {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.enable_steady_tick(Duration::from_millis(200));
                Some(bar)
            }
            _ => None,
        };
        Reporter { output, bar }
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
                let line = format!(
                    "{} {:>5}ms {:>9}B {}{}\n",
                    p.status,
                    p.elapsed.as_millis(),
                    p.bytes,
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
                        bar.set_message(format!("{queued} queued"));
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
                "done: {} ok, {} HTTP errors, {} failed, {} bytes in {:.1}s ({:.1} pages/s){}\n",
                s.ok,
                s.http_errors,
                s.failed,
                s.bytes,
                s.elapsed.as_secs_f64(),
                s.pages_per_sec(),
                if s.limit_reached { ", limit reached" } else { "" }
            ));
                for l in &s.warm_lines {
                    out_line(&format!("{l}\n"));
                }
            }
        }
    }
}
