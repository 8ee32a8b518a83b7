//! The single seam between the crawler and the request-target normalizer.
//!
//! Every URL the crawler requests passes through [`resolve`], so the bytes on
//! the request line (and therefore nginx's `$request_uri` and the cache key)
//! are decided in exactly one place.

use url::Url;

pub use norm_shim::Mode as PctMode;
pub use norm_shim::Options as NormOptions;

/// A resolved, normalized request: the URL to connect to and the exact
/// request-target bytes that go on the request line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The absolute URL; its path and query serialize to `request_target`.
    pub url: Url,
    /// Path plus optional `?query`, exactly as sent.
    pub request_target: String,
}

impl Target {
    /// Lower-case (punycode) host, as nginx's `$host` sees it.
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or("")
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// The port, explicit or the scheme default.
    pub fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or(0)
    }
}

/// Resolve `href` against `base` (or parse it as absolute when `base` is
/// `None`) and normalize the request-target according to `opts`.
///
/// Only `http` and `https` URLs with a host are accepted; the fragment is
/// dropped because it is never sent.
pub fn resolve(base: Option<&Url>, href: &str, opts: &NormOptions) -> Result<Target, String> {
    resolve_in(base, href, opts, None)
}

/// [`resolve`] for a link in a document with the given character
/// encoding: browsers encode the query of such links in the document's
/// encoding (the path is always UTF-8).
pub fn resolve_in(
    base: Option<&Url>,
    href: &str,
    opts: &NormOptions,
    encoding: Option<&'static encoding_rs::Encoding>,
) -> Result<Target, String> {
    let encoding = encoding.filter(|e| *e != encoding_rs::UTF_8);
    let t = match (base, encoding) {
        (Some(b), Some(enc)) => {
            let encode: &dyn for<'a> Fn(&'a str) -> std::borrow::Cow<'a, [u8]> =
                &|s: &str| enc.encode(s).0;
            norm_shim::resolve_with_encoding(b, href, opts, encode)
        }
        (Some(b), None) => norm_shim::resolve(b, href, opts),
        (None, _) => {
            norm_shim::parse_base(href.trim()).and_then(|u| norm_shim::target_of(&u, opts))
        }
    }
    .map_err(|e| e.to_string())?;
    let url = Url::parse(&t.url_string()).map_err(|e| e.to_string())?;
    let mut request_target = url.path().to_string();
    if let Some(q) = url.query() {
        request_target.push('?');
        request_target.push_str(q);
    }
    // The request line is built from `url`; refuse rather than send bytes
    // other than the ones the normalizer chose.
    if request_target != t.target || url.fragment().is_some() {
        return Err(format!(
            "request-target {:?} does not survive re-parsing (got {request_target:?})",
            t.target
        ));
    }
    Ok(Target {
        url,
        request_target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(href: &str, mode: PctMode) -> String {
        let base = Url::parse("https://example.com/shop/").unwrap();
        let opts = NormOptions {
            mode,
            ..NormOptions::default()
        };
        resolve(Some(&base), href, &opts).unwrap().request_target
    }

    #[test]
    fn browser_keeps_existing_case_and_encodes_fresh_upper() {
        assert_eq!(t("/p/%e6%B0%b4/", PctMode::Browser), "/p/%e6%B0%b4/");
        assert_eq!(t("/p/水/", PctMode::Browser), "/p/%E6%B0%B4/");
        assert_eq!(t("/p/%e6%B0%b4/", PctMode::Upper), "/p/%E6%B0%B4/");
        assert_eq!(
            t("/p/%E6%B0%b4/?q=%C3", PctMode::Lower),
            "/p/%e6%b0%b4/?q=%c3"
        );
        assert_eq!(t("/p?", PctMode::Browser), "/p?");
        assert_eq!(t("/page/#frag", PctMode::Browser), "/page/");
        assert_eq!(t("../../up", PctMode::Browser), "/up");
        assert_eq!(t("/a^b", PctMode::Browser), "/a%5Eb");
    }

    #[test]
    fn query_in_document_encoding() {
        let base = Url::parse("https://example.com/").unwrap();
        let o = NormOptions::default();
        let sjis = resolve_in(Some(&base), "/水?q=水", &o, Some(encoding_rs::SHIFT_JIS)).unwrap();
        assert_eq!(sjis.request_target, "/%E6%B0%B4?q=%90%85");
        let gbk = resolve_in(Some(&base), "/水?q=水", &o, Some(encoding_rs::GBK)).unwrap();
        assert_eq!(gbk.request_target, "/%E6%B0%B4?q=%CB%AE");
        let utf8 = resolve_in(Some(&base), "/水?q=水", &o, Some(encoding_rs::UTF_8)).unwrap();
        assert_eq!(utf8.request_target, "/%E6%B0%B4?q=%E6%B0%B4");
    }

    #[test]
    fn rejects_non_http() {
        let base = Url::parse("https://example.com/").unwrap();
        let o = NormOptions::default();
        assert!(resolve(Some(&base), "mailto:a@b", &o).is_err());
        assert!(resolve(Some(&base), "javascript:void(0)", &o).is_err());
        let t = resolve(None, "HTTPS://Bücher.EXAMPLE:443/x", &o).unwrap();
        assert_eq!(t.host(), "xn--bcher-kva.example");
        assert_eq!(t.port(), 443);
    }

    #[test]
    fn mode_parses() {
        assert_eq!("UPPER".parse::<PctMode>().unwrap(), PctMode::Upper);
        assert!("sideways".parse::<PctMode>().is_err());
    }

    #[test]
    fn norm_spec_vectors_survive_the_seam() {
        assert_eq!(
            t("/a/%zz/%/b%?x=%&y=%4", PctMode::Browser),
            "/a/%zz/%/b%?x=%&y=%4"
        );
        assert_eq!(t("/a%2fb/%2F/c", PctMode::Upper), "/a%2Fb/%2F/c");
        assert_eq!(
            t("/search?q=a+b&s=a b&t=水", PctMode::Browser),
            "/search?q=a+b&s=a%20b&t=%E6%B0%B4"
        );
        assert_eq!(t("/p?q='", PctMode::Browser), "/p?q=%27");
        assert_eq!(t("/a\\b", PctMode::Browser), "/a/b");
    }
}
