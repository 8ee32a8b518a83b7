//! `--json` output: one JSON object per line per event, then a summary object, serialized from
//! the typed events. Field names are stable; PHP callers can `json_decode` each line.

use super::event::Event;

/// The event as one JSON line (with the newline).
pub fn line(e: &Event<'_>) -> String {
    // The events hold only strings, numbers and maps with string keys: serialization cannot fail.
    let mut s = serde_json::to_string(e).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::super::event::*;
    use super::*;
    use std::time::Duration;

    #[test]
    fn stable_field_names() {
        let p = PageEvent {
            url: "http://e/",
            final_url: "http://e/",
            status: 200,
            reason: "OK",
            ok: true,
            bytes: 5,
            content_length: None,
            ttfb: Duration::from_millis(3),
            elapsed: Duration::from_millis(4),
            tries: 1,
            redirects: 0,
            depth: 0,
            links: 2,
            cache: "MISS",
        };
        assert_eq!(
            line(&Event::Page(&p)),
            "{\"event\":\"page\",\"url\":\"http://e/\",\"final_url\":\"http://e/\",\"status\":200,\"ok\":true,\"bytes\":5,\"content_length\":null,\"ttfb_ms\":3,\"time_ms\":4,\"tries\":1,\"redirects\":0,\"depth\":0,\"links\":2,\"cache\":\"MISS\"}\n"
        );
        let f = FailureEvent {
            url: "http://e/x",
            at: "http://e/y",
            kind: FailureKind::TooManyRedirects,
            message: "20 redirections exceeded",
            tries: 1,
            elapsed: Duration::from_millis(7),
            depth: 1,
        };
        assert!(line(&Event::Error(&f))
            .starts_with("{\"event\":\"error\",\"url\":\"http://e/x\",\"at\":\"http://e/y\",\"kind\":\"toomanyredirects\""));
        assert_eq!(
            line(&Event::Notice { message: "hi" }),
            "{\"event\":\"notice\",\"message\":\"hi\"}\n"
        );
        let mut s = Summary {
            ok: 3,
            elapsed: Duration::from_secs(2),
            ..Summary::default()
        };
        s.finish();
        let j = line(&Event::Summary(&s));
        assert!(
            j.starts_with("{\"event\":\"summary\",\"pages\":3,\"ok\":3,\"http_errors\":0,\"failed\":0,\"bytes\":0,\"elapsed_ms\":2000,\"pages_per_sec\":1.5,"),
            "{j}"
        );
        assert!(j.contains("\"exit_code\":0,\"cache\":{\"HIT\":0,"), "{j}");
        assert!(!j.contains("concurrency_peak"), "{j}");
    }
}
