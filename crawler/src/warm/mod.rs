//! Cache-warming intelligence on top of the crawl loop: knowing whether nginx stored a page,
//! why it did not, where it stored it, and how fast the server lets us go.
//!
//! Every module here except [`run`] is pure (no sockets, no async runtime) so it can be unit-tested with
//! simulated responses and clocks; the crawl loop feeds it status codes, headers and
//! [`std::time::Instant`]s.
//!
//! | module | job |
//! |---|---|
//! | [`cache_status`] | find nginx's cache-status header and count HIT/MISS/… per run |
//! | [`miss_reason`] | the visible reason a visitor's re-request still misses |
//! | [`vary`] | the `Vary` trap warning and the header variants of `--variants` |
//! | [`cache_index`] | nginx key templates, MD5, `levels=` paths, `KEY:` lines, `--replay-keys` |
//! | [`adaptive`] | adaptive concurrency, the `--max-rps` token bucket and the load-average gate |
//! | [`connect_to`] | `--connect-to HOST:PORT:ADDR:PORT` and per-node counters |
//! | [`run`] | the glue the crawl loop calls: options, extra requests, verify, summary |
//! | [`session`] | one run's bookkeeping: the few calls the crawl loop makes |

pub mod adaptive;
pub mod cache_index;
pub mod cache_status;
pub mod connect_to;
pub mod md5;
pub mod miss_reason;
pub mod run;
pub mod session;
pub mod vary;

/// Headers as `(name, value)` string pairs, the common denominator of every HTTP client.
///
/// With `reqwest`/`http`: `map.iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))`.
/// Names are compared case-insensitively everywhere in this module tree.
pub fn header_values<'a, I>(headers: I, name: &'a str) -> impl Iterator<Item = &'a str> + 'a
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
    I::IntoIter: 'a,
{
    headers
        .into_iter()
        .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// `s` as a JSON string literal (quotes included), for the JSON-lines writers of this module.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_is_case_insensitive() {
        let h = [
            ("Vary", "Accept-Encoding"),
            ("vary", "Cookie"),
            ("X-Other", "1"),
        ];
        let v: Vec<&str> = header_values(h.iter().copied(), "VARY").collect();
        assert_eq!(v, ["Accept-Encoding", "Cookie"]);
    }

    #[test]
    fn json_string_escapes_controls_and_quotes() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }
}
