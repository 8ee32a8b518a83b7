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
    pub key: Result<nginx_cache::KeyTemplate, String>,
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

    /// The GET key of `t` (shown in the ngx_cache_purge answer page).
    pub fn key_of(&self, t: &Target) -> Option<String> {
        let k = self.key.as_ref().ok()?;
        let port = t.port.unwrap_or(if t.scheme == "https" { 443 } else { 80 });
        let req = nginx_cache::KeyRequest {
            scheme: &t.scheme,
            method: "GET",
            host: &t.host,
            port,
            target: &t.uri,
            headers: &[],
        };
        Some(String::from_utf8_lossy(&k.render(&req)).into_owned())
    }

    /// Whether a URL with this host and port belongs to this site.
    pub fn serves(&self, t: &Target) -> bool {
        self.bases
            .iter()
            .any(|b| b.host == t.host && (b.port.is_none() || b.port == t.port))
    }
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
            let levels = nginx_cache::Levels::parse(&conf.levels)
                .map_err(|e| Error::Setup(format!("cache_root {}: {e}", conf.path.display())))?
                .widths()
                .to_vec();
            let bases = conf
                .urls
                .iter()
                .map(|u| Target::parse(u))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    Error::Setup(format!("cache_root {}: url=: {e}", conf.path.display()))
                })?;
            // Variables a URL does not determine (a header, a cookie) leave Purge All only.
            let key = nginx_cache::KeyTemplate::parse(&conf.key)
                .map_err(|e| e.to_string())
                .and_then(|k| match k.header_vars() {
                    v if v.is_empty() => Ok(k),
                    v => Err(format!(
                        "key variables {} are not known from a URL",
                        v.join(" ")
                    )),
                });
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
}
