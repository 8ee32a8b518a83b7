//! The single seam between the crawler and the request-target normalizer.
//!
//! Every URL the crawler requests passes through [`resolve`], so the bytes on
//! the request line (and therefore nginx's `$request_uri` and the cache key)
//! are decided in exactly one place.

use std::fmt;
use std::str::FromStr;

use url::Url;

/// How the `%xx` case of the request-target is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PctMode {
    /// What a browser following the link sends (WHATWG resolution, existing
    /// triplets untouched, fresh encodings upper-case).
    #[default]
    Browser,
    /// Browser, then every valid triplet upper-cased.
    Upper,
    /// Browser, then every valid triplet lower-cased.
    Lower,
    /// Keep the case exactly as written in the href or on the command line.
    Preserve,
    /// No normalization at all beyond what is needed to form a request.
    Off,
}

impl FromStr for PctMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "browser" => Ok(PctMode::Browser),
            "upper" => Ok(PctMode::Upper),
            "lower" => Ok(PctMode::Lower),
            "preserve" => Ok(PctMode::Preserve),
            "off" => Ok(PctMode::Off),
            _ => Err(format!(
                "invalid percent-encoding mode '{s}' (expected browser, upper, lower, preserve or off)"
            )),
        }
    }
}

impl fmt::Display for PctMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PctMode::Browser => "browser",
            PctMode::Upper => "upper",
            PctMode::Lower => "lower",
            PctMode::Preserve => "preserve",
            PctMode::Off => "off",
        })
    }
}

/// Normalizer options (mode plus the browser-parity switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormOptions {
    /// `%xx` case handling.
    pub mode: PctMode,
    /// Encode a raw `^` in the path as `%5E` as current browsers do.
    pub caret_fix: bool,
    /// Encode a raw `|` in the path as `%7C` as Chromium does.
    pub chromium_pipe: bool,
}

impl Default for NormOptions {
    fn default() -> Self {
        NormOptions {
            mode: PctMode::Browser,
            caret_fix: true,
            chromium_pipe: false,
        }
    }
}

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
    // Interim implementation until norm-shim's resolver lands: the WHATWG
    // parser of the `url` crate plus the case transforms of norm-spec §6.2.
    let mut url = match base {
        Some(b) => b.join(href),
        None => Url::parse(href),
    }
    .map_err(|e| format!("{e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("unsupported scheme '{}'", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("URL has no host".to_string());
    }
    url.set_fragment(None);
    let mut path = url.path().to_string();
    let mut query = url.query().map(str::to_string);
    if opts.caret_fix && !matches!(opts.mode, PctMode::Off | PctMode::Preserve) {
        path = path.replace('^', "%5E");
    }
    if opts.chromium_pipe {
        path = path.replace('|', "%7C");
    }
    match opts.mode {
        PctMode::Upper => {
            path = recase(&path, true);
            query = query.map(|q| recase(&q, true));
        }
        PctMode::Lower => {
            path = recase(&path, false);
            query = query.map(|q| recase(&q, false));
        }
        PctMode::Browser | PctMode::Preserve | PctMode::Off => {}
    }
    url.set_path(&path);
    url.set_query(query.as_deref());
    let mut request_target = url.path().to_string();
    if let Some(q) = url.query() {
        request_target.push('?');
        request_target.push_str(q);
    }
    Ok(Target {
        url,
        request_target,
    })
}

fn recase(s: &str, upper: bool) -> String {
    let mut out = s.as_bytes().to_vec();
    let mut i = 0;
    while i + 2 < out.len() {
        if out[i] == b'%' && out[i + 1].is_ascii_hexdigit() && out[i + 2].is_ascii_hexdigit() {
            for j in [i + 1, i + 2] {
                out[j] = if upper {
                    out[j].to_ascii_uppercase()
                } else {
                    out[j].to_ascii_lowercase()
                };
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
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
}
