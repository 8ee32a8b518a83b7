//! The file name nginx gives a `Vary` variant (`ngx_http_file_cache_vary`).

use md5::{Digest, Md5};

/// The variant hash of a request: the name (as hex) of the file nginx stores a `Vary` response
/// under when it differs from the main file's variant.
///
/// MD5 of: the 16 binary bytes of `md5(key)`; then, for each name of the stored `Vary` value
/// (lower-cased, split on spaces and commas), `name:` + the request's values of that header +
/// `\r\n`. Several instances of a header are joined with `,`. `Accept-Encoding`,
/// `Accept-Language` and `Accept-Charset` values are re-tokenised on spaces and commas and joined
/// with `,` (so `gzip, br` and `gzip,br` are the same variant). `headers` are the request's
/// `(name, value)` pairs in the order sent; names compare case-insensitively.
pub fn variant_hash(main_md5: &[u8; 16], vary: &[u8], headers: &[(&str, &str)]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(main_md5);
    let vary = vary.to_ascii_lowercase();
    for name in vary
        .split(|b| *b == b' ' || *b == b',')
        .filter(|n| !n.is_empty())
    {
        h.update(name);
        h.update(b":");
        let normalize = matches!(
            name,
            b"accept-charset" | b"accept-encoding" | b"accept-language"
        );
        let mut n = 0;
        for (_, value) in headers
            .iter()
            .filter(|(k, _)| k.as_bytes().eq_ignore_ascii_case(name))
        {
            if normalize {
                for tok in value
                    .as_bytes()
                    .split(|b| *b == b' ' || *b == b',')
                    .filter(|t| !t.is_empty())
                {
                    if n > 0 {
                        h.update(b",");
                    }
                    h.update(tok);
                    n += 1;
                }
            } else {
                if n > 0 {
                    h.update(b",");
                }
                h.update(value.as_bytes());
                n += 1;
            }
        }
        h.update(b"\r\n");
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{hex, md5};

    /// purge-spec.md §1.3, verified against a live nginx 1.22.1.
    #[test]
    fn live_nginx_vectors() {
        let main = md5(b"httpGETexample.com/vary/");
        assert_eq!(hex(&main), "ebae19893fc8285f34ed7f5b5aab3ef0");
        let v = |ae: Option<&str>| {
            let h: Vec<(&str, &str)> = ae.map(|a| ("Accept-Encoding", a)).into_iter().collect();
            hex(&variant_hash(&main, b"Accept-Encoding", &h))
        };
        assert_eq!(v(None), "e6f83dcf44d43eaa8de870d42d65d0f1");
        assert_eq!(
            v(Some("gzip, deflate, br")),
            "984603f6afb657a791acd0a8c2ae0c8d"
        );
        assert_eq!(
            v(Some("gzip,deflate,br")),
            "984603f6afb657a791acd0a8c2ae0c8d"
        );
        assert_eq!(
            v(Some("gzip, deflate, br, zstd")),
            "cab9e680d0c4449adae86bfe496377de"
        );
    }

    #[test]
    fn names_are_case_insensitive_and_other_headers_raw() {
        let main = md5(b"k");
        let a = variant_hash(&main, b"ACCEPT-ENCODING", &[("accept-encoding", "gzip")]);
        let b = variant_hash(&main, b"accept-encoding", &[("Accept-Encoding", " gzip ")]);
        assert_eq!(a, b);
        let c = variant_hash(&main, b"User-Agent", &[("User-Agent", "a, b")]);
        let d = variant_hash(&main, b"User-Agent", &[("User-Agent", "a,b")]);
        assert_ne!(c, d);
    }
}
