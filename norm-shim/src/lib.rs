//! Request-target normalizer: the exact bytes a browser puts on the request line.
//!
//! nginx caches pages under `$scheme$request_method$host$request_uri`, and `$request_uri` is
//! byte-exact: `/p/%e6%b0%b4/` and `/p/%E6%B0%B4/` are two cache entries for one page. A cache
//! warmer is only useful if it requests the very bytes real visitors request. This crate computes
//! those bytes from a link (an `href` resolved against the page's base URL) once, before any HTTP
//! client sees them, so the result does not depend on HTTP/1.1 vs HTTP/2, the TLS stack or how the
//! client writes to its socket.
//!
//! The crate is pure: no I/O, no global state, no `unsafe`, no exported C symbols.
//!
//! # Modes
//!
//! | [`Mode`] | Request-target |
//! |---|---|
//! | [`Mode::Browser`] (default) | WHATWG resolution (the `url` crate), existing `%xx` kept exactly as written, bytes the client encodes itself in upper-case hex, plus the `^`/`\|` switches of [`Options`] |
//! | [`Mode::Upper`] | `Browser`, then every valid `%xx` triplet upper-cased |
//! | [`Mode::Lower`] | `Browser`, then every valid `%xx` triplet lower-cased |
//! | [`Mode::Preserve`] | identical to `Browser`: never re-cases (kept for the NPP "preserve" setting) |
//! | [`Mode::Off`] | no normalization layer: path and query exactly as the `url` crate serializes them; the switches are ignored |
//!
//! Whatever the mode, the normalizer never decodes a triplet, never repairs an invalid one
//! (`%zz` stays `%zz`), never applies Unicode normalization, always drops the fragment, always
//! removes dot segments (also `%2e` forms), and always reports the host in lower-case punycode
//! without the default port.
//!
//! # Example
//!
//! ```
//! use norm_shim::{resolve, Mode, Options};
//! use url::Url;
//!
//! let base = Url::parse("https://example.com/shop/").unwrap();
//! let opts = Options::default();
//! let t = resolve(&base, "/product/%e6%b0%b4/?q=水", &opts).unwrap();
//! assert_eq!(t.target, "/product/%e6%b0%b4/?q=%E6%B0%B4");
//! assert_eq!(t.dedupe_key(), "httpsexample.com/product/%e6%b0%b4/?q=%E6%B0%B4");
//!
//! let upper = Options { mode: Mode::Upper, ..Options::default() };
//! assert_eq!(resolve(&base, "/product/%e6%b0%b4/", &upper).unwrap().target, "/product/%E6%B0%B4/");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

pub use url::Url;

pub mod wire;

/// How the case of `%xx` triplets (and a few raw bytes) is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Mode {
    /// Send what a browser following the link sends: WHATWG resolution, existing triplets kept as
    /// written, fresh encodings in upper-case hex, plus the `caret_fix`/`chromium_pipe` switches.
    #[default]
    Browser,
    /// `Browser`, then the hex digits of every valid triplet upper-cased (RFC 3986 §6.2.2.1).
    Upper,
    /// `Browser`, then the hex digits of every valid triplet lower-cased.
    Lower,
    /// The link's own case, never re-cased. A native crawler has the original href bytes, so
    /// this is exactly `Browser` (switches included); it exists so the NPP "preserve" setting
    /// maps to something. It does not need NPP's positional `argv` repaint heuristic.
    Preserve,
    /// No normalization layer: path and query as the `url` crate serializes them. Differs from
    /// `Browser` only in ignoring `caret_fix` and `chromium_pipe`, so with both switches off it is
    /// identical to `Browser`. It is the counterpart of NPP's "off" (no shim: the HTTP client's
    /// own bytes), except that the client here is the `url` crate, not GNU Wget, so a stray `%`
    /// is sent as `%`, not re-escaped to `%25`.
    Off,
}

impl Mode {
    /// Every mode, in declaration order.
    pub const ALL: [Mode; 5] = [
        Mode::Browser,
        Mode::Upper,
        Mode::Lower,
        Mode::Preserve,
        Mode::Off,
    ];

    /// The lower-case name accepted by [`FromStr`].
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Browser => "browser",
            Mode::Upper => "upper",
            Mode::Lower => "lower",
            Mode::Preserve => "preserve",
            Mode::Off => "off",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode name that is not one of `browser`, `upper`, `lower`, `preserve`, `off`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseModeError(String);

impl fmt::Display for ParseModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid normalizer mode {:?}: expected browser, upper, lower, preserve or off",
            self.0
        )
    }
}

impl std::error::Error for ParseModeError {}

impl FromStr for Mode {
    type Err = ParseModeError;

    /// Accepts the mode names case-insensitively; surrounding whitespace is not accepted.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseModeError(s.to_owned()))
    }
}

/// Which part of the target `Upper`/`Lower` re-case. Other modes ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// Path and query, as the NPP shim and the mitmproxy scripts do.
    #[default]
    PathAndQuery,
    /// Only the path; the query keeps its triplets as written.
    PathOnly,
}

/// Normalizer settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Options {
    /// The mode; see [`Mode`].
    pub mode: Mode,
    /// Encode a raw `^` in the **path** as `%5E`, as Chrome, Firefox and the WHATWG standard
    /// (since 2025) do; `url` 2.5.8 still sends it raw. Default `true`. Ignored by [`Mode::Off`].
    pub caret_fix: bool,
    /// Encode a raw `|` in the **path** as `%7C`, as Chromium does (Firefox sends it raw).
    /// Default `false`. Ignored by [`Mode::Off`].
    pub chromium_pipe: bool,
    /// What `Upper`/`Lower` re-case. Default [`Scope::PathAndQuery`].
    pub scope: Scope,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Browser,
            caret_fix: true,
            chromium_pipe: false,
            scope: Scope::PathAndQuery,
        }
    }
}

impl Options {
    /// Default options with the given mode.
    pub fn with_mode(mode: Mode) -> Self {
        Options {
            mode,
            ..Options::default()
        }
    }
}

/// Why a link cannot be turned into a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The href (or base) is not a valid URL.
    Parse {
        /// The href as given.
        href: String,
        /// What the WHATWG parser objected to.
        source: url::ParseError,
    },
    /// The link resolves to a scheme the crawler does not fetch (`mailto:`, `javascript:`, …).
    UnsupportedScheme(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Parse { href, source } => write!(f, "invalid URL {href:?}: {source}"),
            Error::UnsupportedScheme(s) => {
                write!(f, "unsupported URL scheme {s:?}: only http and https")
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Parse { source, .. } => Some(source),
            Error::UnsupportedScheme(_) => None,
        }
    }
}

/// A resolved http(s) request: everything that goes into nginx's cache key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `http` or `https`, lower-case.
    pub scheme: String,
    /// Lower-case host, punycode for IDN hosts, IPv6 in brackets; never a port.
    pub host: String,
    /// The port if it is not the scheme's default.
    pub port: Option<u16>,
    /// The request-target (origin form): path, plus `?` and the query if the URL has one
    /// (an empty query `?` is kept: it is a different cache key). Always ASCII, never a fragment.
    pub target: String,
}

impl Target {
    /// The `Host` header value: host, plus `:port` if not the default.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// The absolute URL that requests exactly this target (`scheme://authority target`).
    /// It re-parses to itself with the `url` crate.
    pub fn url_string(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority(), self.target)
    }

    /// The crawl's dedupe key: `$scheme$host$request_uri`, i.e. nginx's usual cache key without
    /// the method (the crawler always sends `GET`). Like nginx's `$host` it has no port.
    pub fn dedupe_key(&self) -> String {
        format!("{}{}{}", self.scheme, self.host, self.target)
    }

    /// The key nginx builds from `fastcgi_cache_key "$scheme$request_method$host$request_uri"`
    /// for this target and `method` (which should be `GET`: `HEAD` warms a different key).
    pub fn cache_key(&self, method: &str) -> String {
        format!("{}{method}{}{}", self.scheme, self.host, self.target)
    }
}

/// Resolves `href` against `base` as a browser does and normalizes it per `opts`.
///
/// `href` should already be HTML-attribute-decoded; `base` is the document base (respect
/// `<base href>`). An absolute `href` ignores `base`. Tab, LF and CR anywhere, and leading and
/// trailing spaces and C0 controls, are stripped (WHATWG). Userinfo is dropped (it is never part
/// of the request). The query is encoded as UTF-8; see [`resolve_with_encoding`] for other
/// document encodings.
///
/// # Errors
///
/// [`Error::Parse`] if the href does not resolve to a URL, [`Error::UnsupportedScheme`] if the
/// href or the base is not http(s). Other schemes are refused before parsing, so hostile hrefs
/// never reach the `url` crate's `file:` code.
pub fn resolve(base: &Url, href: &str, opts: &Options) -> Result<Target, Error> {
    check_schemes(base, href)?;
    let url = Url::options()
        .base_url(Some(base))
        .parse(href)
        .map_err(|source| parse_error(href, source))?;
    target_of(&url, opts)
}

/// [`resolve`] for a document that is not UTF-8.
///
/// `encode` turns query text into the document's encoding, as the WHATWG "encode" step does
/// (an encoder built on e.g. `encoding_rs`, with unmappable characters as `&#NNNN;`). Only the
/// query uses it; the path is always UTF-8. It is only applied to http(s) URLs.
///
/// # Errors
///
/// As [`resolve`].
pub fn resolve_with_encoding(
    base: &Url,
    href: &str,
    opts: &Options,
    encode: &dyn Fn(&str) -> Cow<'_, [u8]>,
) -> Result<Target, Error> {
    check_schemes(base, href)?;
    let url = Url::options()
        .base_url(Some(base))
        .encoding_override(Some(encode))
        .parse(href)
        .map_err(|source| parse_error(href, source))?;
    target_of(&url, opts)
}

/// The target an HTML `<form method=get>` submits: `action` resolved against `base`, its query
/// replaced by the `application/x-www-form-urlencoded` serialization of `fields` (UTF-8: space
/// as `+`, everything but `*-._` and alphanumerics in upper-case hex). No fields give an empty
/// query (`/search?`), as browsers send.
///
/// # Errors
///
/// As [`resolve`].
pub fn resolve_form_get(
    base: &Url,
    action: &str,
    fields: &[(&str, &str)],
    opts: &Options,
) -> Result<Target, Error> {
    check_schemes(base, action)?;
    let mut url = Url::options()
        .base_url(Some(base))
        .parse(action)
        .map_err(|source| parse_error(action, source))?;
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    url.set_query(Some(&query));
    target_of(&url, opts)
}

/// Parses an absolute http(s) URL, e.g. a start URL from the command line, to use as a base.
///
/// Prefer this to `Url::parse` for untrusted input: other schemes are refused before the
/// WHATWG parser sees them (see [`resolve`] for why).
///
/// # Errors
///
/// [`Error::UnsupportedScheme`] for any other scheme (or none), [`Error::Parse`] if the URL
/// is invalid.
pub fn parse_base(s: &str) -> Result<Url, Error> {
    match href_scheme(s) {
        Some(scheme) if is_http(&scheme) => {}
        Some(scheme) => return Err(Error::UnsupportedScheme(scheme)),
        None => {
            return Err(Error::Parse {
                href: s.to_owned(),
                source: url::ParseError::RelativeUrlWithoutBase,
            })
        }
    }
    Url::parse(s).map_err(|source| parse_error(s, source))
}

/// Normalizes an already parsed http(s) URL into a [`Target`].
///
/// # Errors
///
/// [`Error::UnsupportedScheme`] if `url` is not http(s).
pub fn target_of(url: &Url, opts: &Options) -> Result<Target, Error> {
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(Error::UnsupportedScheme(scheme.to_owned()));
    }
    // http(s) URLs always have a host (the parser rejects them otherwise); the empty fallback
    // only keeps this function total.
    let host = url.host_str().unwrap_or_default().to_owned();
    Ok(Target {
        scheme: scheme.to_owned(),
        host,
        port: url.port(),
        target: request_target(url, opts),
    })
}

/// The request-target bytes (path, `?query` if present; never the fragment) for `url` per
/// `opts`. Meant for http(s) URLs; for others it returns path and query the same way.
pub fn request_target(url: &Url, opts: &Options) -> String {
    let path = url.path();
    let query = url.query();
    if opts.mode == Mode::Off {
        return join(Cow::Borrowed(path), query);
    }
    let path = encode_path_extras(path, opts);
    match (opts.mode, opts.scope) {
        // `Off` returned above; listed here only to keep the match exhaustive.
        (Mode::Browser | Mode::Preserve | Mode::Off, _) => join(path, query),
        (Mode::Upper, Scope::PathAndQuery) => upper_triplets(&join(path, query)),
        (Mode::Lower, Scope::PathAndQuery) => lower_triplets(&join(path, query)),
        (Mode::Upper, Scope::PathOnly) => join(Cow::Owned(upper_triplets(&path)), query),
        (Mode::Lower, Scope::PathOnly) => join(Cow::Owned(lower_triplets(&path)), query),
    }
}

fn join(path: Cow<'_, str>, query: Option<&str>) -> String {
    match query {
        Some(q) => {
            let mut s = String::with_capacity(path.len() + 1 + q.len());
            s.push_str(&path);
            s.push('?');
            s.push_str(q);
            s
        }
        None => path.into_owned(),
    }
}

/// Applies `caret_fix` and `chromium_pipe`. A raw `^` or `|` in a serialized path can only be a
/// literal one (triplets start with `%`), and the replacements are stable under re-parsing.
fn encode_path_extras<'a>(path: &'a str, opts: &Options) -> Cow<'a, str> {
    let hit = |c: char| (opts.caret_fix && c == '^') || (opts.chromium_pipe && c == '|');
    if !path.contains(hit) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len() + 8);
    for c in path.chars() {
        match c {
            '^' if opts.caret_fix => out.push_str("%5E"),
            '|' if opts.chromium_pipe => out.push_str("%7C"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Upper-cases the two hex digits of every valid `%xx` triplet in `s`; every other byte
/// (invalid `%` sequences, raw UTF-8, `+`, …) is kept. Length and byte positions never change.
pub fn upper_triplets(s: &str) -> String {
    recase(s, u8::to_ascii_uppercase)
}

/// Lower-cases the two hex digits of every valid `%xx` triplet in `s`; every other byte is
/// kept. Length and byte positions never change.
pub fn lower_triplets(s: &str) -> String {
    recase(s, u8::to_ascii_lowercase)
}

fn recase(s: &str, f: fn(&u8) -> u8) -> String {
    let mut b = s.as_bytes().to_vec();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b'%' && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            b[i + 1] = f(&b[i + 1]);
            b[i + 2] = f(&b[i + 2]);
            i += 3;
        } else {
            // In `%%41` the first `%` is not a triplet; the scan resumes at the second one.
            i += 1;
        }
    }
    // Only ASCII hex digits changed, and only into ASCII hex digits.
    String::from_utf8(b).unwrap_or_else(|_| s.to_owned())
}

fn is_http(scheme: &str) -> bool {
    scheme == "http" || scheme == "https"
}

/// Refuses a non-http(s) base or href before the `url` parser sees it. Besides saving work,
/// this keeps hostile hrefs away from `url` 2.5.8's `file:` path code, which trips a
/// `debug_assert!` (a panic, hence an abort under `panic = "abort"`) on inputs like
/// `..` against `file:///e:///` (servo/rust-url#1114, found by our fuzz target).
fn check_schemes(base: &Url, href: &str) -> Result<(), Error> {
    if !is_http(base.scheme()) {
        return Err(Error::UnsupportedScheme(base.scheme().to_owned()));
    }
    match href_scheme(href) {
        Some(scheme) if !is_http(&scheme) => Err(Error::UnsupportedScheme(scheme)),
        _ => Ok(()),
    }
}

/// The scheme of `href`, lower-cased, found the way the WHATWG parser finds it: after
/// stripping leading C0 controls and spaces and ignoring tab, LF and CR, an ASCII letter
/// followed by letters, digits, `+`, `-` or `.`, ended by `:`. `None` for a relative reference.
fn href_scheme(href: &str) -> Option<String> {
    let mut chars = href
        .trim_start_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'));
    let first = chars.next().filter(char::is_ascii_alphabetic)?;
    let mut scheme = String::from(first.to_ascii_lowercase());
    for c in chars {
        match c {
            ':' => return Some(scheme),
            c if c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.') => {
                scheme.push(c.to_ascii_lowercase());
            }
            _ => return None,
        }
    }
    None
}

fn parse_error(href: &str, source: url::ParseError) -> Error {
    Error::Parse {
        href: href.to_owned(),
        source,
    }
}
