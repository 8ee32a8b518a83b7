//! One run's warm-up bookkeeping, so the crawl loop needs only a few calls:
//! [`Session::observe`] per response, [`Session::verify_result`] per `--verify` re-request, and
//! [`Session::summary`] at the end.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::cache_index::{FileCheck, IndexEntry, KeyRequest};
use super::cache_status::{CacheStatus, Counts, Detector};
use super::connect_to::NodeReport;
use super::miss_reason::{diagnose, MissReason};
use super::vary::VaryWatch;
use crate::config::CacheIndex;

/// What one response looked like to the warm-up logic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    /// Its cache status.
    pub status: CacheStatus,
    /// The request headers the response varies on (lower case), if any.
    pub vary: Vec<String>,
}

/// A page that still misses for a visitor after the warm-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StillMissing {
    /// The URL.
    pub url: String,
    /// What the visitor's request got.
    pub status: CacheStatus,
    /// Why.
    pub reasons: Vec<MissReason>,
}

/// Warm-up state for one run.
#[derive(Debug, Default)]
pub struct Session {
    detector: Detector,
    counts: Counts,
    vary: VaryWatch,
    nodes: NodeReport,
    index: Option<CacheIndex>,
    index_out: Option<PathBuf>,
    entries: Vec<IndexEntry>,
    verified: u64,
    verified_hits: u64,
    missing: Vec<StillMissing>,
}

impl Session {
    /// A session reading `cache_header` (or detecting it), computing an index when given one.
    pub fn new(
        cache_header: Option<&str>,
        index: Option<CacheIndex>,
        index_out: Option<PathBuf>,
    ) -> Self {
        Session {
            detector: Detector::new(cache_header),
            index,
            index_out,
            ..Session::default()
        }
    }

    /// The cache-status header in use, once known.
    pub fn header_name(&self) -> Option<&str> {
        self.detector.header_name()
    }

    /// Records one warm-up response (from `node` when `--connect-to` is used).
    pub fn observe<'a>(
        &mut self,
        headers: &[(&'a str, &'a str)],
        node: Option<SocketAddr>,
    ) -> Observed {
        let status = self.detector.classify(headers.iter().copied());
        self.counts.record(status);
        if let Some(n) = node {
            let stats = self.nodes.node(n);
            stats.responses += 1;
            stats.cache.record(status);
        }
        let vary = self.vary.observe(headers.iter().copied());
        Observed { status, vary }
    }

    /// The cache status of a check request, not counted in the run's totals.
    pub fn status_of(&mut self, headers: &[(&str, &str)]) -> CacheStatus {
        self.detector.classify(headers.iter().copied())
    }

    /// The `Vary` warning once a check confirmed that another browser's request misses.
    pub fn vary_confirmed(&mut self, names: &[String]) -> Option<String> {
        self.vary.confirmed(names)
    }

    /// Records a transport error from `node`.
    pub fn node_error(&mut self, node: SocketAddr) {
        self.nodes.node(node).errors += 1;
    }

    /// Adds a warmed URL to the cache index (no-op without `--cache-path`). The file check runs
    /// in [`Session::finish_index`], after nginx has had time to move its temp file in place.
    pub fn index_url(&mut self, url: &str, req: &KeyRequest<'_>) {
        if let Some(index) = &self.index {
            let mut entry = index.entry(url, req);
            entry.check = None;
            self.entries.push(entry);
        }
    }

    /// Checks every indexed file and writes the JSON lines (to the `--index-out` file, or
    /// stdout for `-`). Returns `(match, missing or other)` counts.
    pub fn finish_index(&mut self) -> io::Result<(u64, u64)> {
        if self.index.is_none() {
            return Ok((0, 0));
        }
        let mut ok = 0;
        let mut bad = 0;
        for e in &mut self.entries {
            let key = e.key.as_bytes().to_vec();
            let check = super::cache_index::check_file(&e.file, &key);
            if check == FileCheck::Match {
                ok += 1;
            } else {
                bad += 1;
            }
            e.check = Some(check);
        }
        if let Some(path) = &self.index_out {
            let mut out: Box<dyn Write> = if path == Path::new("-") {
                Box::new(io::stdout().lock())
            } else {
                Box::new(BufWriter::new(File::create(path)?))
            };
            for e in &self.entries {
                serde_json::to_writer(&mut out, e)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        Ok((ok, bad))
    }

    /// The index entries (after [`Session::finish_index`], with their checks).
    #[cfg(test)]
    pub fn index_entries(&self) -> &[IndexEntry] {
        &self.entries
    }

    /// Records one `--verify` re-request (redirects not followed).
    pub fn verify_result<'a>(
        &mut self,
        url: &str,
        http_status: u16,
        headers: &[(&'a str, &'a str)],
    ) {
        let status = self.detector.classify(headers.iter().copied());
        self.verified += 1;
        let reasons = diagnose(http_status, headers.iter().copied(), status);
        if reasons.is_empty() {
            self.verified_hits += 1;
        } else {
            self.missing.push(StillMissing {
                url: url.to_owned(),
                status,
                reasons,
            });
        }
    }

    /// Records a `--verify` request that failed in transport.
    pub fn verify_error(&mut self, url: &str, error: &str) {
        self.verified += 1;
        self.missing.push(StillMissing {
            url: url.to_owned(),
            status: CacheStatus::Absent,
            reasons: vec![MissReason::Failed(error.to_owned())],
        });
    }

    /// What the run found, for the report: counts, `Vary`, verify results, index, nodes.
    pub fn summary(&self, index_counts: Option<(u64, u64)>) -> InspectSummary {
        InspectSummary {
            cache: self.counts,
            cache_header: self.header_name().map(str::to_owned),
            vary: self.vary.seen().map(str::to_owned).collect(),
            verify: (self.verified > 0).then(|| VerifySummary {
                checked: self.verified,
                hit: self.verified_hits,
                still_missing: self.missing.clone(),
            }),
            index: index_counts.map(|(matched, missing_or_different)| IndexCounts {
                matched,
                missing_or_different,
            }),
            nodes: (self.nodes.iter().next().is_some()).then(|| self.nodes.clone()),
        }
    }
}

/// The inspection part of a run's summary (serialized into the `--json` summary object).
#[derive(Clone, Debug, Default, Serialize)]
pub struct InspectSummary {
    /// Responses per cache status.
    pub cache: Counts,
    /// The cache-status header used, once known.
    pub cache_header: Option<String>,
    /// Request headers named by `Vary`, lower case and sorted.
    pub vary: Vec<String>,
    /// `--verify` results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifySummary>,
    /// `--cache-path` index check counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexCounts>,
    /// `--connect-to` per-node results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes: Option<NodeReport>,
}

/// `--verify` results.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifySummary {
    /// Pages re-requested.
    pub checked: u64,
    /// Of which served from the cache.
    pub hit: u64,
    /// The others, with reasons.
    pub still_missing: Vec<StillMissing>,
}

/// The cache-index check.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct IndexCounts {
    /// Files whose `KEY:` is the computed key.
    #[serde(rename = "match")]
    pub matched: u64,
    /// Missing files or other keys.
    pub missing_or_different: u64,
}

#[cfg(test)]
mod tests {
    use super::super::cache_index::{KeyTemplate, Levels, DEFAULT_KEY};
    use super::*;

    #[test]
    fn observe_counts_warns_once_and_reports_nodes() {
        let mut s = Session::new(None, None, None);
        let node: SocketAddr = "127.0.0.2:80".parse().unwrap();
        let o = s.observe(&[("X-FastCGI-Cache", "MISS")], Some(node));
        assert_eq!(
            o,
            Observed {
                status: CacheStatus::Miss,
                vary: Vec::new()
            }
        );
        let o = s.observe(
            &[("X-FastCGI-Cache", "MISS"), ("Vary", "Accept-Encoding")],
            Some(node),
        );
        assert_eq!(o.vary, ["accept-encoding"]);
        assert!(s.vary_confirmed(&o.vary).is_some());
        let o = s.observe(
            &[("X-FastCGI-Cache", "HIT"), ("Vary", "Accept-Encoding")],
            None,
        );
        assert_eq!(s.vary_confirmed(&o.vary), None);
        s.node_error(node);
        let j = serde_json::to_string(&s.summary(None)).unwrap();
        assert!(j.starts_with("{\"cache\":{\"HIT\":1,\"MISS\":2,"), "{j}");
        assert!(
            j.contains("\"cache_header\":\"X-FastCGI-Cache\",\"vary\":[\"accept-encoding\"]"),
            "{j}"
        );
        assert!(
            j.contains("\"nodes\":[{\"node\":\"127.0.0.2:80\",\"responses\":2,\"errors\":1"),
            "{j}"
        );
    }

    #[test]
    fn verify_lists_still_missing_with_reasons() {
        let mut s = Session::new(Some("X-FastCGI-Cache"), None, None);
        s.verify_result("http://e/a/", 200, &[("X-FastCGI-Cache", "HIT")]);
        s.verify_result(
            "http://e/c/",
            200,
            &[("X-FastCGI-Cache", "MISS"), ("Set-Cookie", "a=1")],
        );
        let j = serde_json::to_string(&s.summary(None)).unwrap();
        assert!(j.contains("\"verify\":{\"checked\":2,\"hit\":1,\"still_missing\":[{\"url\":\"http://e/c/\",\"status\":\"MISS\",\"reasons\":[\"Set-Cookie (nginx does not store responses that set cookies)\"]}]}"), "{j}");
    }

    #[test]
    fn index_is_checked_at_the_end_and_written() {
        let dir = std::env::temp_dir().join(format!("warm-session-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let index = CacheIndex {
            template: KeyTemplate::parse(DEFAULT_KEY).unwrap(),
            base: dir.join("cache"),
            levels: Levels::parse("1:2").unwrap(),
            check: true,
        };
        let out = dir.join("index.jsonl");
        let mut s = Session::new(None, Some(index), Some(out.clone()));
        let req = KeyRequest {
            scheme: "http",
            method: "GET",
            host: "127.0.0.1",
            port: 8080,
            target: "/a/",
            headers: &[],
        };
        s.index_url("http://127.0.0.1:8080/a/", &req);
        // nginx writes the file after the response: it only has to exist by the end of the run.
        let e = s.index_entries()[0].clone();
        std::fs::create_dir_all(e.file.parent().unwrap()).unwrap();
        std::fs::write(&e.file, b"\x05\nKEY: httpGET127.0.0.1/a/\n").unwrap();
        assert_eq!(s.finish_index().unwrap(), (1, 0));
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.contains("\"on_disk\":\"match\""), "{text}");
        let j = serde_json::to_string(&s.summary(Some((1, 0)))).unwrap();
        assert!(
            j.contains("\"index\":{\"match\":1,\"missing_or_different\":0}"),
            "{j}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
