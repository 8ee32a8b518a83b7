//! What the responses say about nginx's cache: which header carries the cache status and what
//! it says, why a page still misses, whether `Vary` splits the cache, where nginx stores each
//! page (on top of the shared `nginx-cache` crate), and the per-node counts of `--connect-to`.
//!
//! Pure code (no sockets, no async runtime), unit-tested with simulated responses; `run` feeds
//! it status codes and headers.

pub mod cache_index;
pub mod cache_status;
pub mod connect_to;
pub mod miss_reason;
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
}
