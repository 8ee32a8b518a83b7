//! `--json` output: one JSON object per line per event, then a summary
//! object. Field names are stable; PHP callers can `json_decode` each line.

use serde_json::{json, Value};

use crate::crawl::{PageEvent, Summary};
use crate::fetch::Failure;

/// A fetched page (any final HTTP status).
pub fn page(p: &PageEvent<'_>) -> Value {
    json!({
        "event": "page",
        "url": p.url,
        "final_url": p.final_url,
        "status": p.status,
        "ok": (200..300).contains(&p.status),
        "bytes": p.bytes,
        "content_length": p.content_length,
        "ttfb_ms": ms(p.ttfb),
        "time_ms": ms(p.elapsed),
        "tries": p.tries,
        "redirects": p.redirects,
        "depth": p.depth,
        "links": p.links,
        "cache": p.cache,
    })
}

/// A failed fetch.
pub fn failure(f: &Failure, depth: u32) -> Value {
    json!({
        "event": "error",
        "url": f.requested.url.as_str(),
        "at": f.at.as_str(),
        "kind": format!("{:?}", f.kind).to_ascii_lowercase(),
        "message": f.message,
        "tries": f.tries,
        "time_ms": ms(f.elapsed),
        "depth": depth,
    })
}

/// A notice (informational, e.g. a sitemap that could not be read).
pub fn notice(msg: &str) -> Value {
    json!({ "event": "notice", "message": msg })
}

/// The final summary.
pub fn summary(s: &Summary) -> Value {
    let mut v = json!({
        "event": "summary",
        "pages": s.ok + s.http_errors,
        "ok": s.ok,
        "http_errors": s.http_errors,
        "failed": s.failed,
        "bytes": s.bytes,
        "elapsed_ms": ms(s.elapsed),
        "pages_per_sec": s.pages_per_sec(),
        "skipped": s.skipped,
        "dropped_queue_full": s.dropped_full,
        "dropped_pattern_cap": s.dropped_pattern,
        "limit_reached": s.limit_reached,
        "exit_code": s.exit_code,
    });
    // Cache-warming members: cache status counts, Vary, verify, index, nodes.
    if let (Some(obj), Some(warm)) = (v.as_object_mut(), s.warm_json.as_object()) {
        for (k, w) in warm {
            obj.insert(k.clone(), w.clone());
        }
    }
    v
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
