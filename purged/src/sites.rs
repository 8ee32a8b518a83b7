//! The sites the service serves: the `cache_root` lines of /etc/safexec.conf whose owner is the
//! account the service runs as, with their key template, levels and base URLs.

use std::path::Path;

use safexec_conf::CacheRoot;

use crate::error::Error;

/// A request URL split the way nginx sees it (`$scheme`, `$host`, `$request_uri`), bytes as
/// given: no percent-decoding, no dot-segment removal, so the key is the one nginx stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Target {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case host name without the port (nginx's `$host`).
    pub host: String,
    /// The port written in the URL, if any.
    pub port: Option<u16>,
    /// Path and query (`$request_uri`), starting with `/`.
    pub uri: String,
}

impl Target {
    /// Parses `http(s)://host[:port][/path][?query]`; a fragment is dropped (browsers never send
    /// it). Control bytes, spaces and backslashes are refused: nginx would never have keyed them.
    pub fn parse(url: &str) -> Result<Target, String> {
        if url.len() > 8192 {
            return Err("URL longer than 8192 bytes".into());
        }
        if url.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'\\') {
            return Err(format!(
                "URL contains a space, a control byte or a backslash: {url:?}"
            ));
        }
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("not an absolute http(s) URL: {url:?}"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("not an http(s) URL: {url:?}"));
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(format!("URL has user info: {url:?}"));
        }
        let (host, port) =
            split_host_port(authority).ok_or_else(|| format!("bad host or port in {url:?}"))?;
        let tail = tail.split('#').next().unwrap_or("");
        let uri = if tail.starts_with('/') {
            tail.to_owned()
        } else {
            format!("/{tail}")
        };
        Ok(Target {
            scheme,
            host,
            port,
            uri,
        })
    }

    /// `scheme://host[:port]uri` again.
    pub fn url(&self) -> String {
        match self.port {
            Some(p) => format!("{}://{}:{p}{}", self.scheme, self.host, self.uri),
            None => format!("{}://{}{}", self.scheme, self.host, self.uri),
        }
    }
}

/// `host[:port]` → lower-case host and port; `None` when malformed.
fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (format!("[{h}]"), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p.parse().ok()?)),
            None => (authority.to_owned(), None),
        }
    };
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._[]:".contains(&b));
    ok.then(|| (host.to_ascii_lowercase(), port))
}

/// One part of a key template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Scheme,
    Method,
    Host,
    RequestUri,
}

/// A `fastcgi_cache_key` template restricted to what a URL determines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyTemplate {
    parts: Vec<Part>,
}

impl KeyTemplate {
    /// Parses `$scheme`, `$request_method`, `$host`, `$request_uri` (also as `${name}`) and
    /// literal text. Other variables depend on more than the URL (a cookie, a header), so a URL
    /// alone cannot name the entry: such a site supports Purge All and paths only.
    pub fn parse(src: &str) -> Result<KeyTemplate, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = src;
        while let Some(i) = rest.find('$') {
            lit.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            let (name, after) = if let Some(r) = rest.strip_prefix('{') {
                let (n, a) = r
                    .split_once('}')
                    .ok_or_else(|| format!("unclosed ${{ in key {src:?}"))?;
                (n, a)
            } else {
                let n = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..n], &rest[n..])
            };
            let part = match name {
                "scheme" => Part::Scheme,
                "request_method" => Part::Method,
                "host" => Part::Host,
                "request_uri" => Part::RequestUri,
                other => return Err(format!("key variable ${other} is not known from a URL")),
            };
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(part);
            rest = after;
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(KeyTemplate { parts })
    }

    /// Whether the key contains `$request_method` (then GET and HEAD entries differ).
    pub fn has_method(&self) -> bool {
        self.parts.contains(&Part::Method)
    }

    /// The key nginx stores for `method` on `t`.
    pub fn render(&self, t: &Target, method: &str) -> Vec<u8> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Scheme => out.push_str(&t.scheme),
                Part::Method => out.push_str(method),
                Part::Host => out.push_str(&t.host),
                Part::RequestUri => out.push_str(&t.uri),
            }
        }
        out.into_bytes()
    }
}

/// One cache root this service may act on.
#[derive(Debug, Clone)]
pub struct Site {
    /// Index in [`Sites::all`].
    pub id: usize,
    /// The configured line.
    pub conf: CacheRoot,
    /// `levels=` as widths (1 or 2 each).
    pub levels: Vec<usize>,
    /// The key template, or why URLs cannot name this cache's entries.
    pub key: Result<KeyTemplate, String>,
    /// `url=` parsed.
    pub bases: Vec<Target>,
}

impl Site {
    /// The cache root directory.
    pub fn root(&self) -> &Path {
        &self.conf.path
    }

    /// A short name for messages: the first base URL, else the root.
    pub fn name(&self) -> String {
        self.bases
            .first()
            .map(|b| {
                let mut b = b.clone();
                b.uri.clear();
                b.url()
            })
            .unwrap_or_else(|| self.conf.path.display().to_string())
    }

    /// Whether a URL with this host and port belongs to this site.
    pub fn serves(&self, t: &Target) -> bool {
        self.bases
            .iter()
            .any(|b| b.host == t.host && (b.port.is_none() || b.port == t.port))
    }
}

/// Parses `levels=` (`1:2` → `[1, 2]`).
pub fn parse_levels(s: &str) -> Result<Vec<usize>, String> {
    let v: Vec<usize> = s
        .split(':')
        .map(|p| match p {
            "1" => Ok(1),
            "2" => Ok(2),
            _ => Err(format!("bad levels {s:?}")),
        })
        .collect::<Result<_, _>>()?;
    if v.is_empty() || v.len() > 3 {
        return Err(format!("bad levels {s:?}"));
    }
    Ok(v)
}

/// Every site of the configuration the service serves.
#[derive(Debug, Clone, Default)]
pub struct Sites {
    /// The sites, in configuration order.
    pub all: Vec<Site>,
}

impl Sites {
    /// Loads the `cache_root` lines of `path` whose owner is `me`; lines owned by another
    /// account are skipped (the service could not delete their files anyway), with a note.
    pub fn load(path: &Path, me: &str) -> Result<(Sites, Vec<String>), Error> {
        let loaded = safexec_conf::load_from(path).map_err(Error::Setup)?;
        if let Some(w) = loaded.warning {
            // The defaults have no cache roots: serving nothing silently would hide the mistake.
            return Err(Error::Setup(w));
        }
        let mut notes = Vec::new();
        let mut all = Vec::new();
        for conf in loaded.config.cache_roots {
            if conf.owner != me {
                notes.push(format!(
                    "skipping cache_root {}: owned by {}, the service runs as {me}",
                    conf.path.display(),
                    conf.owner
                ));
                continue;
            }
            let levels = parse_levels(&conf.levels)
                .map_err(|e| Error::Setup(format!("cache_root {}: {e}", conf.path.display())))?;
            let bases = conf
                .urls
                .iter()
                .map(|u| Target::parse(u))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    Error::Setup(format!("cache_root {}: url=: {e}", conf.path.display()))
                })?;
            let key = KeyTemplate::parse(&conf.key);
            if let Err(e) = &key {
                notes.push(format!(
                    "cache_root {}: {e}; URL and prefix purges are refused there",
                    conf.path.display()
                ));
            }
            all.push(Site {
                id: all.len(),
                conf,
                levels,
                key,
                bases,
            });
        }
        Ok((Sites { all }, notes))
    }

    /// The configured root that `path` names or lies under, and the components below it.
    pub fn locate(&self, path: &Path) -> Option<(&Site, Vec<String>)> {
        self.all.iter().find_map(|s| {
            let rest = path.strip_prefix(s.root()).ok()?;
            let comps = rest
                .components()
                .map(|c| c.as_os_str().to_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()?;
            Some((s, comps))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_keep_the_bytes_nginx_keys() {
        let t = Target::parse("https://Example.COM/a/%E6/?x=1#frag").unwrap();
        assert_eq!(t.host, "example.com");
        assert_eq!(t.uri, "/a/%E6/?x=1");
        assert_eq!(Target::parse("http://h:8080").unwrap().uri, "/");
        assert_eq!(Target::parse("http://h:8080?q").unwrap().uri, "/?q");
        for bad in [
            "ftp://x/",
            "/relative",
            "http://a b/",
            "http://h:99999/",
            "http://u@h/",
            "http://h/\n",
            "http:///x",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_templates_render_like_nginx() {
        let k = KeyTemplate::parse("$scheme$request_method$host$request_uri").unwrap();
        let t = Target::parse("https://example.com/").unwrap();
        assert_eq!(k.render(&t, "GET"), b"httpsGETexample.com/");
        let k = KeyTemplate::parse("x${host}y").unwrap();
        assert_eq!(k.render(&t, "GET"), b"xexample.comy");
        assert!(!k.has_method());
        assert!(KeyTemplate::parse("$host$cookie_x").is_err());
    }

    #[test]
    fn levels_parse() {
        assert_eq!(parse_levels("1:2").unwrap(), vec![1, 2]);
        assert!(parse_levels("3").is_err());
        assert!(parse_levels("1:1:1:1").is_err());
    }
}
