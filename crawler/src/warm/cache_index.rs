//! Where nginx stores each page: key templates, MD5, `levels=` paths, `KEY:` lines, and replay.
//!
//! nginx evaluates `fastcgi_cache_key` (or `proxy_cache_key`), takes the MD5 of the resulting
//! bytes, names the file with its 32 lower-case hex digits and nests it in directories cut from
//! the *end* of that hex string (`levels=1:2` → `c/29/b7f5…029c`). Each file starts with a binary
//! header, then `\nKEY: <key>\n`, then the stored upstream response (norm-spec.md §4.2–§4.3).
//! Computing the path from the URL replaces NPP's scan of every cache file; reading the `KEY:`
//! lines of an existing cache (`--replay-keys`) gives back the exact request targets visitors used.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::json_string;
use super::md5;

/// nginx's usual FastCGI key, and the default of `--cache-key`.
pub const DEFAULT_KEY: &str = "$scheme$request_method$host$request_uri";

/// How much of a cache file is read to find its `KEY:` line. The binary header is a few hundred
/// bytes and nginx keys are bounded by the request line (`large_client_header_buffers`, 8 KiB by
/// default), so 64 KiB is ample while keeping a hostile or corrupt file from costing more.
pub const KEY_READ_LIMIT: u64 = 64 * 1024;

/// Request methods recognised when splitting a key back into its parts.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];

/// A variable of an nginx key template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Var {
    /// `$scheme`: `http` or `https`.
    Scheme,
    /// `$request_method`: always `GET` for a warm-up.
    RequestMethod,
    /// `$host`: lower-case host without port.
    Host,
    /// `$http_host`: the `Host` header as sent (with a non-default port).
    HttpHost,
    /// `$request_uri`: the raw request target, path and query, byte-exact.
    RequestUri,
    /// `$uri`: the decoded path with repeated slashes merged.
    Uri,
    /// `$args` / `$query_string`: the query without `?`.
    Args,
    /// `$is_args`: `?` when the query is not empty.
    IsArgs,
    /// `$server_port`: the port of the URL.
    ServerPort,
    /// `$http_NAME`: a request header (`_` stands for `-`), empty when not sent.
    Header(String),
    /// `$cookie_NAME`: a cookie from the `Cookie` request header, empty when not sent.
    Cookie(String),
}

/// One piece of a template: literal text or a variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Text copied as is.
    Lit(String),
    /// A variable evaluated per request.
    Var(Var),
}

/// A parsed `--cache-key` template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<Part>,
}

/// The request facts a key is computed from.
#[derive(Clone, Debug, Default)]
pub struct KeyRequest<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The method (`GET`).
    pub method: &'a str,
    /// Host in lower case, without port (punycode for IDNs).
    pub host: &'a str,
    /// The port the URL names (default port included: 80/443).
    pub port: u16,
    /// The request target exactly as sent: path and query.
    pub target: &'a str,
    /// The request headers sent (for `$http_*` and `$cookie_*`).
    pub headers: &'a [(&'a str, &'a str)],
}

impl KeyTemplate {
    /// Parses an nginx template: `$name`, `${name}` and literal text.
    pub fn parse(src: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = src;
        while let Some(c) = rest.chars().next() {
            if c != '$' {
                lit.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let after = &rest[1..];
            let (name, consumed) = if let Some(inner) = after.strip_prefix('{') {
                let end = inner
                    .find('}')
                    .ok_or_else(|| format!("--cache-key: unclosed \"${{\" in {src:?}"))?;
                (&inner[..end], end + 3)
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end + 1)
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "--cache-key: bad variable name after \"$\" in {src:?}"
                ));
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Var(Self::var(name)?));
            rest = &rest[consumed..];
        }
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        if parts.is_empty() {
            return Err("--cache-key: empty template".to_owned());
        }
        Ok(KeyTemplate { parts })
    }

    fn var(name: &str) -> Result<Var, String> {
        let lower = name.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "scheme" => Var::Scheme,
            "request_method" => Var::RequestMethod,
            "host" => Var::Host,
            "http_host" => Var::HttpHost,
            "request_uri" => Var::RequestUri,
            "uri" | "document_uri" => Var::Uri,
            "args" | "query_string" => Var::Args,
            "is_args" => Var::IsArgs,
            "server_port" => Var::ServerPort,
            _ => {
                if let Some(h) = lower.strip_prefix("http_").filter(|h| !h.is_empty()) {
                    Var::Header(h.replace('_', "-"))
                } else if let Some(c) = name.strip_prefix("cookie_").filter(|c| !c.is_empty()) {
                    Var::Cookie(c.to_owned())
                } else {
                    return Err(format!(
                        "--cache-key: unsupported variable ${name} (supported: $scheme $request_method $host \
                         $http_host $request_uri $uri $args $query_string $is_args $server_port $http_NAME $cookie_NAME)"
                    ));
                }
            }
        })
    }

    /// The template's parts.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The key nginx computes for `req`, as bytes (`$uri` may decode to non-UTF-8).
    pub fn render(&self, req: &KeyRequest<'_>) -> Vec<u8> {
        let (path, query) = match req.target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (req.target, None),
        };
        let header = |name: &str| {
            req.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map_or("", |(_, v)| *v)
        };
        let mut out = Vec::with_capacity(req.target.len() + req.host.len() + 16);
        for part in &self.parts {
            match part {
                Part::Lit(l) => out.extend_from_slice(l.as_bytes()),
                Part::Var(v) => match v {
                    Var::Scheme => out.extend_from_slice(req.scheme.as_bytes()),
                    Var::RequestMethod => out.extend_from_slice(req.method.as_bytes()),
                    Var::Host => out.extend_from_slice(req.host.as_bytes()),
                    Var::HttpHost => {
                        let default =
                            matches!((req.scheme, req.port), ("http", 80) | ("https", 443));
                        let sent = header("host");
                        if !sent.is_empty() {
                            out.extend_from_slice(sent.as_bytes());
                        } else if default {
                            out.extend_from_slice(req.host.as_bytes());
                        } else {
                            out.extend_from_slice(format!("{}:{}", req.host, req.port).as_bytes());
                        }
                    }
                    Var::RequestUri => out.extend_from_slice(req.target.as_bytes()),
                    Var::Uri => out.extend_from_slice(&decoded_uri(path)),
                    Var::Args => out.extend_from_slice(query.unwrap_or("").as_bytes()),
                    Var::IsArgs => {
                        if query.is_some_and(|q| !q.is_empty()) {
                            out.push(b'?');
                        }
                    }
                    Var::ServerPort => out.extend_from_slice(req.port.to_string().as_bytes()),
                    Var::Header(h) => out.extend_from_slice(header(h).as_bytes()),
                    Var::Cookie(c) => out.extend_from_slice(cookie(header("cookie"), c).as_bytes()),
                },
            }
        }
        out
    }

    /// Splits a key found in a cache file back into its variables (the inverse of [`render`]).
    ///
    /// Literals must match exactly; `$scheme` and `$request_method` match their known words;
    /// a host followed by `$request_uri`/`$uri` ends at the first `/`; `$uri` followed by
    /// `$is_args` ends at the first `?`; any other variable ends at the next literal or the end.
    ///
    /// [`render`]: KeyTemplate::render
    pub fn split(&self, key: &str) -> Result<KeyParts, String> {
        let mut parts = KeyParts::default();
        let mut pos = 0;
        for (i, part) in self.parts.iter().enumerate() {
            let rest = &key[pos..];
            let var = match part {
                Part::Lit(l) => {
                    if !rest.starts_with(l.as_str()) {
                        return Err(format!("key does not match the template (expected {l:?})"));
                    }
                    pos += l.len();
                    continue;
                }
                Part::Var(v) => v,
            };
            let next = self.parts.get(i + 1);
            let len =
                match var {
                    Var::Scheme => {
                        if rest.starts_with("https") {
                            5
                        } else if rest.starts_with("http") {
                            4
                        } else {
                            return Err(
                                "key does not start with a scheme where the template has $scheme"
                                    .into(),
                            );
                        }
                    }
                    Var::RequestMethod => METHODS
                        .iter()
                        .find(|m| rest.starts_with(**m))
                        .map(|m| m.len())
                        .ok_or("no request method where the template has $request_method")?,
                    Var::IsArgs => usize::from(rest.starts_with('?')),
                    _ => match next {
                        None => rest.len(),
                        Some(Part::Lit(l)) => rest.find(l.as_str()).ok_or_else(|| {
                            format!("key does not match the template (expected {l:?})")
                        })?,
                        Some(Part::Var(Var::RequestUri | Var::Uri))
                            if matches!(var, Var::Host | Var::HttpHost) =>
                        {
                            rest.find('/').ok_or("no path after the host in the key")?
                        }
                        Some(Part::Var(Var::IsArgs)) if *var == Var::Uri => {
                            // The path ends at `?`, or where the next literal of the template starts.
                            let stop = self.parts[i + 1..].iter().find_map(|p| match p {
                                Part::Lit(l) => Some(l.as_str()),
                                Part::Var(_) => None,
                            });
                            let lit_at = stop.and_then(|l| rest.rfind(l)).unwrap_or(rest.len());
                            rest[..lit_at].find('?').unwrap_or(lit_at)
                        }
                        Some(Part::Var(_)) => return Err(
                            "the template has two variables with no separator; it cannot be split"
                                .into(),
                        ),
                    },
                };
            let value = rest[..len].to_owned();
            pos += len;
            match var {
                Var::Scheme => parts.scheme = Some(value),
                Var::RequestMethod => parts.method = Some(value),
                Var::Host | Var::HttpHost => parts.host = Some(value),
                Var::RequestUri => parts.request_uri = Some(value),
                Var::Uri => parts.uri = Some(value),
                Var::Args => parts.args = Some(value),
                _ => {}
            }
        }
        if pos != key.len() {
            return Err("key has trailing text the template does not account for".into());
        }
        Ok(parts)
    }
}

/// A key split back into its variables (`None` when the template lacks the variable).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyParts {
    /// `$scheme`.
    pub scheme: Option<String>,
    /// `$request_method`.
    pub method: Option<String>,
    /// `$host` or `$http_host`.
    pub host: Option<String>,
    /// `$request_uri`.
    pub request_uri: Option<String>,
    /// `$uri` (decoded: only usable as a target when it is plain ASCII).
    pub uri: Option<String>,
    /// `$args`.
    pub args: Option<String>,
}

impl KeyParts {
    /// The request target to send: `$request_uri`, or `$uri` plus `?$args`.
    pub fn target(&self) -> Option<String> {
        if let Some(r) = &self.request_uri {
            return Some(r.clone());
        }
        let uri = self.uri.as_ref()?;
        Some(match self.args.as_deref() {
            Some(a) if !a.is_empty() => format!("{uri}?{a}"),
            _ => uri.clone(),
        })
    }
}

/// `$uri` as nginx computes it from a path: `%xx` decoded, repeated slashes merged.
fn decoded_uri(path: &str) -> Vec<u8> {
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let byte = if b[i] == b'%'
            && i + 2 < b.len()
            && hex(b[i + 1]).is_some()
            && hex(b[i + 2]).is_some()
        {
            let v = hex(b[i + 1]).unwrap_or(0) * 16 + hex(b[i + 2]).unwrap_or(0);
            i += 3;
            v
        } else {
            i += 1;
            b[i - 1]
        };
        if byte == b'/' && out.last() == Some(&b'/') {
            continue;
        }
        out.push(byte);
    }
    out
}

fn hex(c: u8) -> Option<u8> {
    char::from(c)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn cookie<'a>(header: &'a str, name: &str) -> &'a str {
    header
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map_or("", |(_, v)| v)
}

/// The `levels=` parameter of `fastcgi_cache_path`: 1 to 3 levels of 1 or 2 hex characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Levels(Vec<usize>);

impl Levels {
    /// Parses `1:2`-style levels, or the empty string for a flat cache directory.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Ok(Levels(Vec::new()));
        }
        let levels = s
            .split(':')
            .map(|l| match l {
                "1" => Ok(1),
                "2" => Ok(2),
                _ => Err(format!(
                    "--levels: {s:?} is not valid (1 to 3 levels of 1 or 2, like 1:2)"
                )),
            })
            .collect::<Result<Vec<usize>, String>>()?;
        if levels.len() > 3 {
            return Err(format!("--levels: {s:?} has more than 3 levels"));
        }
        Ok(Levels(levels))
    }

    /// The cache file of `md5_hex` under `base`: directories cut from the end of the hash.
    pub fn file_path(&self, base: &Path, md5_hex: &str) -> PathBuf {
        let mut path = base.to_path_buf();
        let mut end = md5_hex.len();
        for len in &self.0 {
            let start = end.saturating_sub(*len);
            path.push(&md5_hex[start..end]);
            end = start;
        }
        path.push(md5_hex);
        path
    }

    /// How many directory levels there are.
    pub fn depth(&self) -> usize {
        self.0.len()
    }
}

/// What the cache file on disk says about a computed key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileCheck {
    /// The file exists and its `KEY:` line is the key.
    Match,
    /// No such file (not cached, purged, or stored under a `Vary` variant name).
    Missing,
    /// The file holds another key (an MD5 collision or a wrong `--cache-key`).
    KeyMismatch(String),
    /// The file has no `KEY:` line in its first [`KEY_READ_LIMIT`] bytes.
    NoKeyLine,
    /// The file exists but cannot be read (permissions).
    Unreadable(String),
}

impl FileCheck {
    /// The short word used in the JSON index.
    pub fn as_str(&self) -> &'static str {
        match self {
            FileCheck::Match => "match",
            FileCheck::Missing => "missing",
            FileCheck::KeyMismatch(_) => "key-mismatch",
            FileCheck::NoKeyLine => "no-key-line",
            FileCheck::Unreadable(_) => "unreadable",
        }
    }
}

/// Reads the `KEY:` line of an nginx cache file, looking at most [`KEY_READ_LIMIT`] bytes.
///
/// The binary header before it cannot contain a newline followed by `KEY: ` except by chance in
/// its 16-byte variant hash, so the first `\nKEY: ` is the line; it must end with `\n`.
pub fn read_key(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    fs::File::open(path)?
        .take(KEY_READ_LIMIT)
        .read_to_end(&mut buf)?;
    Ok(key_from_bytes(&buf).map(<[u8]>::to_vec))
}

/// The key in the first `\nKEY: …\n` line of `head` (the start of a cache file).
pub fn key_from_bytes(head: &[u8]) -> Option<&[u8]> {
    const MARK: &[u8] = b"\nKEY: ";
    let start = head.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
    let len = head[start..].iter().position(|b| *b == b'\n')?;
    Some(&head[start..start + len])
}

/// Compares the cache file at `path` with the expected `key`.
pub fn check_file(path: &Path, key: &[u8]) -> FileCheck {
    match read_key(path) {
        Ok(Some(found)) if found == key => FileCheck::Match,
        Ok(Some(found)) => FileCheck::KeyMismatch(String::from_utf8_lossy(&found).into_owned()),
        Ok(None) => FileCheck::NoKeyLine,
        Err(e) if e.kind() == io::ErrorKind::NotFound => FileCheck::Missing,
        Err(e) => FileCheck::Unreadable(e.to_string()),
    }
}

/// Computes keys and file paths for warmed URLs (`--cache-path`, `--cache-key`, `--levels`).
#[derive(Clone, Debug)]
pub struct CacheIndex {
    /// The key template.
    pub template: KeyTemplate,
    /// The cache directory (`fastcgi_cache_path`).
    pub base: PathBuf,
    /// Its `levels=`.
    pub levels: Levels,
    /// Whether to open each file and compare its `KEY:` line.
    pub check: bool,
}

/// One URL's entry of the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The URL warmed.
    pub url: String,
    /// The computed key (lossy UTF-8 for display).
    pub key: String,
    /// MD5 of the key, hex.
    pub md5: String,
    /// The cache file path.
    pub file: PathBuf,
    /// The on-disk comparison, when checking was asked for.
    pub check: Option<FileCheck>,
}

impl CacheIndex {
    /// The entry for one warmed request.
    pub fn entry(&self, url: &str, req: &KeyRequest<'_>) -> IndexEntry {
        let key = self.template.render(req);
        let md5 = md5::hex_digest(&key);
        let file = self.levels.file_path(&self.base, &md5);
        let check = self.check.then(|| check_file(&file, &key));
        IndexEntry {
            url: url.to_owned(),
            key: String::from_utf8_lossy(&key).into_owned(),
            md5,
            file,
            check,
        }
    }
}

impl IndexEntry {
    /// The JSON-lines record: `{"url":…,"key":…,"md5":…,"file":…,"on_disk":…}` (no newline).
    pub fn to_json(&self) -> String {
        let on_disk = match &self.check {
            None => "null".to_owned(),
            Some(c) => json_string(c.as_str()),
        };
        let mut s = format!(
            "{{\"url\":{},\"key\":{},\"md5\":{},\"file\":{},\"on_disk\":{on_disk}",
            json_string(&self.url),
            json_string(&self.key),
            json_string(&self.md5),
            json_string(&self.file.to_string_lossy()),
        );
        if let Some(FileCheck::KeyMismatch(found)) = &self.check {
            s.push_str(&format!(",\"found_key\":{}", json_string(found)));
        }
        s.push('}');
        s
    }
}

/// A request `--replay-keys` will make, recovered from one cache file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayTarget {
    /// The full key, as found.
    pub key: String,
    /// Its parts.
    pub parts: KeyParts,
    /// The request target to send, byte for byte.
    pub target: String,
}

impl ReplayTarget {
    /// The absolute URL, with `scheme`/`host` from the key or else the given defaults.
    pub fn url(&self, default_scheme: &str, default_host: &str) -> String {
        let scheme = self.parts.scheme.as_deref().unwrap_or(default_scheme);
        let host = self.parts.host.as_deref().unwrap_or(default_host);
        format!("{scheme}://{host}{}", self.target)
    }
}

/// The outcome of scanning a cache directory for `--replay-keys`.
#[derive(Clone, Debug, Default)]
pub struct ReplayScan {
    /// Distinct keys to re-request (Vary variants share a key and appear once), in path order.
    pub targets: Vec<ReplayTarget>,
    /// Files not replayed, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Whether `name` looks like an nginx cache file name (32 lower-case hex digits).
fn is_cache_file_name(name: &str) -> bool {
    name.len() == 32
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Walks an nginx cache directory (at most 3 levels deep, symlinks not followed) and recovers the
/// request of every entry. Temp files and other names are ignored; unusable keys are listed.
pub fn replay_scan(dir: &Path, template: &KeyTemplate) -> io::Result<ReplayScan> {
    let mut files = Vec::new();
    collect_files(dir, 0, &mut files)?;
    files.sort();
    let mut scan = ReplayScan::default();
    let mut seen = std::collections::HashSet::new();
    for path in files {
        let key = match read_key(&path) {
            Ok(Some(k)) => k,
            Ok(None) => {
                scan.skipped.push((path, "no KEY line".into()));
                continue;
            }
            Err(e) => {
                scan.skipped.push((path, format!("cannot read: {e}")));
                continue;
            }
        };
        let Ok(key) = String::from_utf8(key) else {
            scan.skipped.push((
                path,
                "key is not UTF-8 (raw bytes a client cannot resend)".into(),
            ));
            continue;
        };
        if !seen.insert(key.clone()) {
            continue;
        }
        match replay_target(&key, template) {
            Ok(t) => scan.targets.push(t),
            Err(e) => scan.skipped.push((path, e)),
        }
    }
    Ok(scan)
}

/// The request to re-send for one key.
pub fn replay_target(key: &str, template: &KeyTemplate) -> Result<ReplayTarget, String> {
    let parts = template.split(key)?;
    if let Some(m) = parts.method.as_deref().filter(|m| *m != "GET") {
        return Err(format!("{m} entry (only GET entries are warmed)"));
    }
    let target = parts
        .target()
        .ok_or("the template has neither $request_uri nor $uri")?;
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "request target is not plain ASCII starting with /; it cannot be resent byte for byte"
                .into(),
        );
    }
    Ok(ReplayTarget {
        key: key.to_owned(),
        parts,
        target,
    })
}

fn collect_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let path = entry.path();
        if ty.is_dir() && depth < 3 {
            collect_files(&path, depth + 1, out)?;
        } else if ty.is_file() && entry.file_name().to_str().is_some_and(is_cache_file_name) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req<'a>(target: &'a str, headers: &'a [(&'a str, &'a str)]) -> KeyRequest<'a> {
        KeyRequest {
            scheme: "https",
            method: "GET",
            host: "example.com",
            port: 443,
            target,
            headers,
        }
    }

    #[test]
    fn nginx_documented_levels_example() {
        let l = Levels::parse("1:2").unwrap();
        assert_eq!(
            l.file_path(
                Path::new("/data/nginx/cache"),
                "b7f54b2df7773722d382f4809d65029c"
            ),
            Path::new("/data/nginx/cache/c/29/b7f54b2df7773722d382f4809d65029c")
        );
        let l = Levels::parse("2:2:1").unwrap();
        assert_eq!(
            l.file_path(Path::new("/c"), "b7f54b2df7773722d382f4809d65029c"),
            Path::new("/c/9c/02/5/b7f54b2df7773722d382f4809d65029c")
        );
        assert_eq!(
            Levels::parse("").unwrap().file_path(Path::new("/c"), "ab"),
            Path::new("/c/ab")
        );
        for bad in ["3", "1:2:1:1", "1:", "a", "0"] {
            assert!(Levels::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_template_matches_norm_spec_table() {
        let t = KeyTemplate::parse(DEFAULT_KEY).unwrap();
        let rows = [
            (
                "GET",
                "/product/%E6%B0%B4%E6%BB%B4/",
                "1/03/a7cd573cd581bc9237669cb237756031",
            ),
            (
                "GET",
                "/product/%e6%b0%b4%e6%bb%b4/",
                "5/f9/7cf729bab234057c95f77c859841ff95",
            ),
            (
                "GET",
                "/product/%e6%B0%b4%e6%bb%b4/",
                "8/bb/eb5fa184b042dcebb78cf971993e7bb8",
            ),
            (
                "HEAD",
                "/product/%e6%b0%b4%e6%bb%b4/",
                "7/d6/e5d4eccab11e1b49904903589ed24d67",
            ),
        ];
        let index = CacheIndex {
            template: t,
            base: PathBuf::new(),
            levels: Levels::parse("1:2").unwrap(),
            check: false,
        };
        for (method, target, file) in rows {
            let r = KeyRequest {
                method,
                ..req(target, &[])
            };
            let e = index.entry("u", &r);
            assert_eq!(e.key, format!("https{method}example.com{target}"));
            assert_eq!(e.file, Path::new(file));
        }
    }

    #[test]
    fn variables_render() {
        let headers = [
            ("User-Agent", "UA"),
            ("Cookie", "a=1; wp_mobile=yes"),
            ("X-Device", "m"),
        ];
        let cases = [
            (
                "$scheme://$host$request_uri",
                "/a/?x=1",
                "https://example.com/a/?x=1",
            ),
            (
                "${scheme}|${request_method}|$http_host",
                "/",
                "https|GET|example.com",
            ),
            (
                "$uri$is_args$args",
                "/a//b/%e6%b0%b4?q=%41",
                "/a/b/\u{6c34}?q=%41",
            ),
            ("$uri$is_args$args", "/a/?", "/a/"),
            (
                "$host:$server_port$request_uri:$http_user_agent:$http_x_device",
                "/",
                "example.com:443/:UA:m",
            ),
            ("k-$cookie_wp_mobile-$cookie_none", "/", "k-yes-"),
            ("$query_string", "/p?z=9", "z=9"),
        ];
        for (tpl, target, want) in cases {
            let t = KeyTemplate::parse(tpl).unwrap();
            assert_eq!(
                String::from_utf8(t.render(&req(target, &headers))).unwrap(),
                want,
                "{tpl}"
            );
        }
        let t = KeyTemplate::parse("$http_host").unwrap();
        let r = KeyRequest {
            scheme: "http",
            port: 8080,
            ..req("/", &[])
        };
        assert_eq!(t.render(&r), b"example.com:8080");
    }

    #[test]
    fn bad_templates_are_rejected() {
        for bad in ["", "$", "${scheme", "$nosuchvar", "${a-b}", "$http_"] {
            assert!(KeyTemplate::parse(bad).is_err(), "{bad:?}");
        }
        let e = KeyTemplate::parse("$scheme$mobile").unwrap_err();
        assert!(
            e.starts_with("--cache-key: unsupported variable $mobile"),
            "{e}"
        );
    }

    #[test]
    fn split_default_and_custom_templates() {
        let t = KeyTemplate::parse(DEFAULT_KEY).unwrap();
        let p = t.split("httpsGETexample.com/a/b?x=/y").unwrap();
        assert_eq!(p.scheme.as_deref(), Some("https"));
        assert_eq!(p.method.as_deref(), Some("GET"));
        assert_eq!(p.host.as_deref(), Some("example.com"));
        assert_eq!(p.target().as_deref(), Some("/a/b?x=/y"));
        let p = t.split("httpHEADlocalhost:8080/").unwrap();
        assert_eq!(
            (p.scheme.as_deref(), p.method.as_deref(), p.host.as_deref()),
            (Some("http"), Some("HEAD"), Some("localhost:8080"))
        );
        assert!(t.split("ftpGETx/").is_err());
        assert!(t.split("httpsFETCHx/").is_err());
        assert!(t.split("httpsGETexample.com").is_err());

        let t = KeyTemplate::parse("$scheme://$host$uri$is_args$args|m").unwrap();
        let p = t.split("https://example.com/a/?p=2|m").unwrap();
        assert_eq!(p.target().as_deref(), Some("/a/?p=2"));
        let p = t.split("https://example.com/a/|m").unwrap();
        assert_eq!(p.target().as_deref(), Some("/a/"));
        assert!(KeyTemplate::parse("$host$http_user_agent")
            .unwrap()
            .split("ab")
            .is_err());
        assert!(KeyTemplate::parse("x$request_uri")
            .unwrap()
            .split("y/")
            .is_err());
    }

    #[test]
    fn key_line_parsing() {
        let mut file = vec![5u8, 0, 0, 0, 0, 0, 0, 0];
        file.extend_from_slice(&[0xff; 300]);
        file.extend_from_slice(
            b"\nKEY: httpsGETexample.com/a/\n\x01\x06\x00\x01Status: 200 OK\r\n",
        );
        assert_eq!(key_from_bytes(&file), Some(&b"httpsGETexample.com/a/"[..]));
        assert_eq!(key_from_bytes(b"\nKEY: unterminated"), None);
        assert_eq!(key_from_bytes(b"KEY: no-leading-newline\n"), None);
        assert_eq!(key_from_bytes(b""), None);
    }

    fn write_cache_file(base: &Path, levels: &Levels, key: &str) -> PathBuf {
        let md5 = md5::hex_digest(key.as_bytes());
        let path = levels.file_path(base, &md5);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut body = vec![0u8; 336];
        body[0] = 5;
        body.extend_from_slice(format!("\nKEY: {key}\nStatus: 200 OK\r\n\r\n<html>").as_bytes());
        fs::write(&path, body).unwrap();
        path
    }

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("warm-ci-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn check_file_and_json_index() {
        let dir = tempdir("check");
        let levels = Levels::parse("1:2").unwrap();
        write_cache_file(&dir, &levels, "httpsGETexample.com/a/");
        let index = CacheIndex {
            template: KeyTemplate::parse(DEFAULT_KEY).unwrap(),
            base: dir.clone(),
            levels,
            check: true,
        };
        let hit = index.entry("https://example.com/a/", &req("/a/", &[]));
        assert_eq!(hit.check, Some(FileCheck::Match));
        let json = hit.to_json();
        assert!(
            json.starts_with(
                "{\"url\":\"https://example.com/a/\",\"key\":\"httpsGETexample.com/a/\",\"md5\":\""
            ),
            "{json}"
        );
        assert!(json.ends_with("\"on_disk\":\"match\"}"), "{json}");
        let miss = index.entry("https://example.com/b/", &req("/b/", &[]));
        assert_eq!(miss.check, Some(FileCheck::Missing));
        // A file holding another key under this name.
        fs::create_dir_all(miss.file.parent().unwrap()).unwrap();
        fs::write(&miss.file, b"\x05\nKEY: other\n").unwrap();
        let e = index.entry("https://example.com/b/", &req("/b/", &[]));
        assert_eq!(e.check, Some(FileCheck::KeyMismatch("other".into())));
        assert!(e
            .to_json()
            .contains("\"on_disk\":\"key-mismatch\",\"found_key\":\"other\""));
        fs::write(&miss.file, vec![0u8; 70_000]).unwrap();
        assert_eq!(check_file(&miss.file, b"x"), FileCheck::NoKeyLine);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn replay_scan_recovers_targets() {
        let dir = tempdir("replay");
        let levels = Levels::parse("1:2").unwrap();
        write_cache_file(&dir, &levels, "httpsGETexample.com/p/%e6%b0%b4/");
        write_cache_file(&dir, &levels, "httpsGETexample.com/?s=x");
        write_cache_file(&dir, &levels, "httpsHEADexample.com/h/");
        // Same key in a second (Vary variant) file: replayed once.
        let variant = dir.join("0/00/000000000000000000000000000000aa");
        fs::create_dir_all(variant.parent().unwrap()).unwrap();
        fs::write(&variant, b"\x05\nKEY: httpsGETexample.com/?s=x\n").unwrap();
        fs::write(
            dir.join("0/00/000000000000000000000000000000aa.0000000001"),
            b"temp",
        )
        .unwrap();
        fs::write(dir.join("0/00/00000000000000000000000000000bad"), b"no key").unwrap();
        let scan = replay_scan(&dir, &KeyTemplate::parse(DEFAULT_KEY).unwrap()).unwrap();
        let mut urls: Vec<String> = scan
            .targets
            .iter()
            .map(|t| t.url("http", "ignored"))
            .collect();
        urls.sort();
        assert_eq!(
            urls,
            [
                "https://example.com/?s=x",
                "https://example.com/p/%e6%b0%b4/"
            ]
        );
        let mut reasons: Vec<&str> = scan.skipped.iter().map(|(_, r)| r.as_str()).collect();
        reasons.sort();
        assert_eq!(
            reasons,
            ["HEAD entry (only GET entries are warmed)", "no KEY line"]
        );
        assert!(replay_scan(&dir.join("nope"), &KeyTemplate::parse(DEFAULT_KEY).unwrap()).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn replay_rejects_raw_bytes() {
        let t = KeyTemplate::parse(DEFAULT_KEY).unwrap();
        assert!(replay_target("httpsGETexample.com/p/\u{6c34}/", &t).is_err());
        assert!(replay_target("httpsGETexample.com/a b", &t).is_err());
        let r = replay_target("httpsGETexample.com/ok", &t).unwrap();
        assert_eq!(r.url("http", "x"), "https://example.com/ok");
    }
}
