//! Reporting: typed events ([`event`]) routed to the selected output, one renderer per format:
//! the wget log ([`wget_log`]), JSON lines ([`json`]), plain lines or a progress bar on a
//! terminal ([`plain`]). Every line is flushed at once, and write errors (a closed pipe) are
//! ignored rather than turned into panics.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::config::Output;
use event::{Event, FailureEvent, PageEvent, Summary};

pub mod event;
pub mod json;
pub mod plain;
pub mod wget_log;

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
    /// Page and error lines not yet written to stdout / stderr (see [`Reporter::flush`]).
    out: String,
    err: String,
}

/// Buffered lines are written once this much has gathered, even in a burst.
const FLUSH_AT: usize = 32 * 1024;

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

impl Reporter {
    /// A reporter for `output`; the bar is shown only for plain output when stderr is a terminal.
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
            out: String::new(),
            err: String::new(),
        }
    }

    /// Writes the buffered page and error lines. Per-page lines are gathered and written when
    /// the crawl loop has nothing ready (it calls this before it waits) or when [`FLUSH_AT`] is
    /// reached: one write per burst instead of one per page (a warm cache completes pages faster
    /// than a system call per line is worth), while a reader still sees each line as soon as the
    /// crawl pauses. Notices and the summary flush first, so each stream keeps its order.
    pub fn flush(&mut self) {
        if !self.out.is_empty() {
            out_line(&self.out);
            self.out.clear();
        }
        if !self.err.is_empty() {
            err_line(&self.err);
            self.err.clear();
        }
    }

    fn buffer_out(&mut self, line: &str) {
        self.out.push_str(line);
        if self.out.len() >= FLUSH_AT {
            self.flush();
        }
    }

    fn buffer_err(&mut self, line: &str) {
        self.err.push_str(line);
        if self.err.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// The number of pages known before the crawl starts (sitemap seeding): the bar then shows
    /// `done/total` and an ETA.
    pub fn set_total(&mut self, total: u64) {
        self.total = Some(total);
    }

    /// A page got a final response (2xx or an HTTP error).
    pub fn page(&mut self, p: &PageEvent<'_>, queued: usize) {
        match self.output {
            Output::Quiet => {}
            Output::WgetLog => {
                let ts = wget_log::timestamp();
                if p.ok {
                    self.buffer_err(&wget_log::success(
                        &ts,
                        p.final_url,
                        p.bytes,
                        p.content_length,
                        p.tries,
                    ));
                } else {
                    self.buffer_err(&wget_log::http_error(&ts, p.final_url, p.status, p.reason));
                }
            }
            Output::Json => self.buffer_out(&json::line(&Event::Page(p))),
            Output::Plain { .. } => {
                self.done += 1;
                self.bytes += p.bytes;
                let line = plain::page_line(p);
                match &self.bar {
                    Some(bar) => {
                        bar.inc(1);
                        bar.set_message(plain::progress_text(
                            self.done,
                            self.total,
                            self.bytes,
                            queued,
                            self.started.elapsed(),
                        ));
                        if !p.ok {
                            bar.println(line.trim_end());
                        }
                    }
                    None => self.buffer_out(&line),
                }
            }
        }
    }

    /// A fetch failed without a final response.
    pub fn failure(&mut self, f: &FailureEvent<'_>) {
        match self.output {
            Output::Quiet => {}
            Output::WgetLog => {
                self.buffer_err(&wget_log::failure(&wget_log::timestamp(), f.url, f.message))
            }
            Output::Json => self.buffer_out(&json::line(&Event::Error(f))),
            Output::Plain { .. } => {
                let line = plain::failure_line(f);
                match &self.bar {
                    Some(bar) => bar.println(&line),
                    None => self.buffer_out(&format!("{line}\n")),
                }
            }
        }
    }

    /// Informational message (never in the wget log's parsed shapes).
    pub fn notice(&mut self, msg: &str) {
        self.flush();
        match self.output {
            Output::Quiet => {}
            // wget prints its own notices on stderr too; none of NPP's
            // patterns match a line starting with "cache-preload:".
            Output::WgetLog => err_line(&format!("cache-preload: {msg}\n")),
            Output::Json => out_line(&json::line(&Event::Notice { message: msg })),
            Output::Plain { .. } => match &self.bar {
                Some(bar) => bar.println(format!("cache-preload: {msg}")),
                None => err_line(&format!("cache-preload: {msg}\n")),
            },
        }
    }

    /// End of a normal run.
    pub fn summary(&mut self, s: &Summary) {
        self.flush();
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        match self.output {
            Output::Quiet => {}
            Output::WgetLog => {
                // Before FINISHED, as "cache-preload: " notices that NPP's parsers ignore.
                for l in plain::warm_lines(&s.warm) {
                    err_line(&format!("cache-preload: {l}\n"));
                }
                err_line(&wget_log::summary(
                    &wget_log::timestamp(),
                    s.elapsed,
                    s.ok,
                    s.bytes,
                    s.elapsed,
                ));
            }
            Output::Json => out_line(&json::line(&Event::Summary(s))),
            Output::Plain { .. } => {
                out_line(&plain::summary_line(s));
                for l in plain::warm_lines(&s.warm) {
                    out_line(&format!("{l}\n"));
                }
            }
        }
    }
}
