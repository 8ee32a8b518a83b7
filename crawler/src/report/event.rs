//! The typed events of a run and its summary. `--json` output is these structs serialized by
//! serde (field names are the stable format); the other renderers read the same fields.

use std::time::Duration;

use serde::Serialize;

use crate::inspect::session::InspectSummary;

fn ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// One output event; `--json` writes each as an object tagged with `"event"`.
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event<'a> {
    /// A page got a final response.
    Page(&'a PageEvent<'a>),
    /// A fetch got no final response.
    Error(&'a FailureEvent<'a>),
    /// Informational message.
    Notice {
        /// One line of English.
        message: &'a str,
    },
    /// The end of a normal run.
    Summary(&'a Summary),
}

/// What the reporters see for one page with a final response.
#[derive(Debug, Serialize)]
pub struct PageEvent<'a> {
    /// URL as requested.
    pub url: &'a str,
    /// URL of the final response.
    pub final_url: &'a str,
    /// Final status code.
    pub status: u16,
    /// Reason phrase for the status (wget log only).
    #[serde(skip)]
    pub reason: &'a str,
    /// Whether the status is 2xx.
    pub ok: bool,
    /// Body bytes on the wire.
    pub bytes: u64,
    /// Announced Content-Length.
    pub content_length: Option<u64>,
    /// Time to response headers.
    #[serde(rename = "ttfb_ms", serialize_with = "ms")]
    pub ttfb: Duration,
    /// Total time.
    #[serde(rename = "time_ms", serialize_with = "ms")]
    pub elapsed: Duration,
    /// Attempts on the final hop.
    pub tries: u32,
    /// Redirects followed.
    pub redirects: u32,
    /// Depth of the URL.
    pub depth: u32,
    /// Links found on the page (0 if not scanned).
    pub links: usize,
    /// nginx's cache status for this response (`HIT`, `MISS`, …, `NONE`).
    pub cache: &'a str,
}

/// Why a fetch got no final response (the JSON `kind`; the names are the stable format).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum FailureKind {
    /// DNS, connect, TLS, timeout or connection reset, after all tries.
    #[serde(rename = "network")]
    Network,
    /// More redirects than allowed.
    #[serde(rename = "toomanyredirects")]
    TooManyRedirects,
    /// A redirect off the allowed hosts or to a non-HTTP URL.
    #[serde(rename = "badredirect")]
    BadRedirect,
}

/// A fetch that produced no final response.
#[derive(Debug, Serialize)]
pub struct FailureEvent<'a> {
    /// URL as requested.
    pub url: &'a str,
    /// The URL being fetched when it failed.
    pub at: &'a str,
    /// Classification.
    pub kind: FailureKind,
    /// One-line English message.
    pub message: &'a str,
    /// Attempts used.
    pub tries: u32,
    /// Time spent.
    #[serde(rename = "time_ms", serialize_with = "ms")]
    pub elapsed: Duration,
    /// Depth of the URL.
    pub depth: u32,
}

/// Cache-warming results of a run: what `inspect` found plus the run's own notes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WarmSummary {
    /// Counts, `Vary`, verify, index, nodes.
    #[serde(flatten)]
    pub inspect: InspectSummary,
    /// The highest adaptive concurrency reached (adaptive runs only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency_peak: Option<usize>,
    /// The adaptive cap (text output only).
    #[serde(skip)]
    pub concurrency_cap: usize,
    /// The adaptive cap for cache HITs (text output only).
    #[serde(skip)]
    pub concurrency_cap_cached: usize,
    /// `--variants` labels requested besides the crawl's own (text output only).
    #[serde(skip)]
    pub variants: Vec<String>,
    /// Problems met while finishing (text output only), e.g. an index that could not be written.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// Totals of a finished run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Pages with a final response.
    pub pages: u64,
    /// Pages with a 2xx final response.
    pub ok: u64,
    /// Pages with a non-2xx final response (4xx, 5xx, unfollowed 3xx).
    pub http_errors: u64,
    /// Fetches without a final response (network, redirect errors).
    pub failed: u64,
    /// Body bytes received for 2xx pages.
    pub bytes: u64,
    /// Wall-clock time of the run.
    #[serde(rename = "elapsed_ms", serialize_with = "ms")]
    pub elapsed: Duration,
    /// Final responses per second over the run.
    pub pages_per_sec: f64,
    /// URLs skipped by reject rules or host limits.
    pub skipped: u64,
    /// URLs dropped because the queue was full.
    #[serde(rename = "dropped_queue_full")]
    pub dropped_full: u64,
    /// URLs dropped by the per-pattern cap.
    #[serde(rename = "dropped_pattern_cap")]
    pub dropped_pattern: u64,
    /// `--max-pages` stopped the crawl.
    pub limit_reached: bool,
    /// The process exit status for this run.
    pub exit_code: i32,
    /// Cache-warming results.
    #[serde(flatten)]
    pub warm: WarmSummary,
}

impl Summary {
    /// Sets the derived fields (pages, rate, exit status) from the counts and the elapsed time.
    pub fn finish(&mut self) {
        self.pages = self.ok + self.http_errors;
        let s = self.elapsed.as_secs_f64();
        self.pages_per_sec = if s > 0.0 { self.pages as f64 / s } else { 0.0 };
        self.exit_code = if self.ok == 0 && self.http_errors == 0 && self.failed > 0 {
            crate::EXIT_NETWORK
        } else if self.http_errors > 0 || self.failed > 0 {
            crate::EXIT_PARTIAL
        } else {
            crate::EXIT_OK
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let mut s = Summary {
            failed: 2,
            ..Summary::default()
        };
        s.finish();
        assert_eq!(s.exit_code, crate::EXIT_NETWORK);
        s.ok = 1;
        s.finish();
        assert_eq!(s.exit_code, crate::EXIT_PARTIAL);
        let mut s = Summary {
            ok: 3,
            ..Summary::default()
        };
        s.finish();
        assert_eq!(s.exit_code, crate::EXIT_OK);
        s.http_errors = 1;
        s.finish();
        assert_eq!(s.exit_code, crate::EXIT_PARTIAL);
    }
}
