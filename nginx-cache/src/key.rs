//! Key templates: parse `fastcgi_cache_key`, evaluate it for a request, split a key back.

use crate::Error;

/// nginx's usual FastCGI key, and the default of `--cache-key`.
pub const DEFAULT_KEY: &str = "$scheme$request_method$host$request_uri";

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
    pub fn parse(src: &str) -> Result<Self, Error> {
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
                    .ok_or_else(|| Error::Template(format!("unclosed \"${{\" in {src:?}")))?;
                (&inner[..end], end + 3)
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end + 1)
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(Error::Template(format!(
                    "bad variable name after \"$\" in {src:?}"
                )));
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
            return Err(Error::Template("empty template".to_owned()));
        }
        Ok(KeyTemplate { parts })
    }

    fn var(name: &str) -> Result<Var, Error> {
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
                    return Err(Error::Template(format!(
                        "unsupported variable ${name} (supported: $scheme $request_method $host \
                         $http_host $request_uri $uri $args $query_string $is_args $server_port $http_NAME $cookie_NAME)"
                    )));
                }
            }
        })
    }

    /// The template's parts.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The request-header variables of the template (`$http_NAME` other than `$http_host`, and
    /// `$cookie_NAME`), as written: a purge cannot know which values visitors sent for them.
    pub fn header_vars(&self) -> Vec<String> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Var(Var::Header(h)) => Some(format!("$http_{}", h.replace('-', "_"))),
                Part::Var(Var::Cookie(c)) => Some(format!("$cookie_{c}")),
                _ => None,
            })
            .collect()
    }

    /// Whether the template contains `$request_method` (then `GET` and `HEAD` are two keys).
    pub fn has_method(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Var(Var::RequestMethod)))
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
    pub fn split(&self, key: &str) -> Result<KeyParts, Error> {
        self.split_inner(key).map_err(Error::Split)
    }

    fn split_inner(&self, key: &str) -> Result<KeyParts, String> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{md5_hex, Levels};

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
    fn default_template_matches_norm_spec_table() {
        let t = KeyTemplate::parse(DEFAULT_KEY).unwrap();
        let levels = Levels::parse("1:2").unwrap();
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
        for (method, target, file) in rows {
            let r = KeyRequest {
                method,
                ..req(target, &[])
            };
            let key = t.render(&r);
            assert_eq!(
                key,
                format!("https{method}example.com{target}").into_bytes()
            );
            assert_eq!(levels.rel_path(&md5_hex(&key)), file);
        }
        assert!(t.has_method());
        assert!(t.header_vars().is_empty());
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
        let t = KeyTemplate::parse("$http_user_agent$cookie_x$host").unwrap();
        assert_eq!(t.header_vars(), ["$http_user_agent", "$cookie_x"]);
        assert!(!t.has_method());
    }

    #[test]
    fn bad_templates_are_rejected() {
        for bad in ["", "$", "${scheme", "$nosuchvar", "${a-b}", "$http_"] {
            assert!(KeyTemplate::parse(bad).is_err(), "{bad:?}");
        }
        let e = KeyTemplate::parse("$scheme$mobile")
            .unwrap_err()
            .to_string();
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
}
