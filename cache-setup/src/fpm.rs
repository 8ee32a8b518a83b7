//! PHP-FPM pools: which address each listens on, the user and group it runs as, and the PHP
//! settings that matter to caching (`disable_functions`, `zlib.output_compression`).
//!
//! The files use PHP's ini syntax: `[pool]` sections, `key = value` lines, `;` comments,
//! `include=` (a glob) in the global section, and `$pool` expanded to the section's name.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::nginx::conf::{lexical_normal, Source};

/// One pool.
#[derive(Debug, Clone, Serialize)]
pub struct Pool {
    /// The section name.
    pub name: String,
    /// `file:line` of the section header.
    pub place: String,
    /// The pool file.
    pub file: PathBuf,
    /// `user =`.
    pub user: Option<String>,
    /// `group =` (PHP-FPM uses the user's primary group when unset).
    pub group: Option<String>,
    /// `listen =`.
    pub listen: Option<String>,
    /// `php_admin_value[disable_functions]` / `php_value[...]`, with its place.
    pub disable_functions: Option<(String, String)>,
    /// `php_admin_flag[zlib.output_compression]` or the like, with its place.
    pub zlib_output_compression: Option<(String, String)>,
}

impl Pool {
    /// Whether the pool listens where nginx's `*_pass` endpoint points.
    pub fn serves(&self, endpoint: &str) -> bool {
        let Some(listen) = &self.listen else {
            return false;
        };
        match (Endpoint::of_pass(endpoint), Endpoint::of_listen(listen)) {
            (Endpoint::Unix(a), Endpoint::Unix(b)) => lexical_normal(&a) == lexical_normal(&b),
            (Endpoint::Tcp(ha, pa), Endpoint::Tcp(hb, pb)) => {
                pa == pb && (hb == "*" || ha == hb || (is_loopback(&ha) && is_loopback(&hb)))
            }
            _ => false,
        }
    }
}

/// A socket address nginx or PHP-FPM names.
#[derive(Debug, PartialEq, Eq)]
enum Endpoint {
    Unix(PathBuf),
    Tcp(String, u16),
    Unknown,
}

impl Endpoint {
    /// `unix:/path`, `host:port`, `[v6]:port`.
    fn of_pass(s: &str) -> Endpoint {
        if let Some(p) = s.strip_prefix("unix:") {
            return Endpoint::Unix(PathBuf::from(p));
        }
        if s.contains('$') {
            return Endpoint::Unknown;
        }
        host_port(s)
    }

    /// `/path`, `port`, `host:port`, `[v6]:port`.
    fn of_listen(s: &str) -> Endpoint {
        if s.starts_with('/') {
            return Endpoint::Unix(PathBuf::from(s));
        }
        if let Ok(p) = s.parse::<u16>() {
            return Endpoint::Tcp("*".into(), p);
        }
        match host_port(s) {
            Endpoint::Tcp(h, p) if matches!(h.as_str(), "0.0.0.0" | "[::]" | "*") => {
                Endpoint::Tcp("*".into(), p)
            }
            e => e,
        }
    }
}

fn host_port(s: &str) -> Endpoint {
    match s.rsplit_once(':') {
        Some((h, p)) => match p.parse() {
            Ok(p) => Endpoint::Tcp(h.to_string(), p),
            Err(_) => Endpoint::Unknown,
        },
        None => Endpoint::Unknown,
    }
}

fn is_loopback(h: &str) -> bool {
    matches!(h, "127.0.0.1" | "localhost" | "[::1]" | "::1")
}

/// Reads the pools of every file in `files` (and of the files their `include=` lines name).
/// A file named twice (directly and through an include) is read once.
pub fn load(files: &[PathBuf], src: &dyn Source) -> Result<Vec<Pool>> {
    let mut seen = Vec::new();
    let mut pools = Vec::new();
    for f in files {
        read_file(
            &lexical_normal(f),
            src,
            &mut Vec::new(),
            &mut seen,
            &mut pools,
        )?;
    }
    Ok(pools)
}

fn read_file(
    path: &Path,
    src: &dyn Source,
    stack: &mut Vec<PathBuf>,
    seen: &mut Vec<PathBuf>,
    pools: &mut Vec<Pool>,
) -> Result<()> {
    if stack.iter().any(|p| p == path) {
        return Err(Error::Msg(format!(
            "{}: include loop through this file",
            path.display()
        )));
    }
    if seen.iter().any(|p| p == path) {
        return Ok(());
    }
    if seen.len() >= 4096 {
        return Err(Error::Msg("more than 4096 PHP-FPM files".into()));
    }
    seen.push(path.to_path_buf());
    let text = src.read(path)?;
    let parsed = parse(path, &text)?;
    stack.push(path.to_path_buf());
    for (line, pattern) in parsed.includes {
        let target = match path.parent() {
            Some(dir) => lexical_normal(&dir.join(&pattern)),
            None => PathBuf::from(&pattern),
        };
        let names = src
            .glob(&target)
            .map_err(|e| Error::at(path, line, format!("include: {e}")))?;
        for n in names {
            read_file(&n, src, stack, seen, pools).map_err(|e| match e {
                Error::At { .. } => e,
                other => Error::at(path, line, format!("include: {other}")),
            })?;
        }
    }
    stack.pop();
    pools.extend(parsed.pools);
    Ok(())
}

/// One file's pools and `include=` lines.
#[derive(Debug)]
pub struct Parsed {
    /// The pools, in file order.
    pub pools: Vec<Pool>,
    /// `(line, pattern)` of each `include=` of the global section.
    pub includes: Vec<(usize, String)>,
}

/// Parses one PHP-FPM file.
pub fn parse(path: &Path, text: &[u8]) -> Result<Parsed> {
    let text = std::str::from_utf8(text)
        .map_err(|e| Error::Msg(format!("{}: not UTF-8 ({e})", path.display())))?;
    let mut pools: Vec<Pool> = Vec::new();
    let mut includes = Vec::new();
    let mut section: Option<String> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with(';') || l.starts_with('#') {
            continue;
        }
        if let Some(rest) = l.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| Error::at(path, line, "section header without \"]\""))?
                .trim();
            if name.is_empty() {
                return Err(Error::at(path, line, "empty section name"));
            }
            section = Some(name.to_string());
            if name != "global" {
                pools.push(Pool {
                    name: name.to_string(),
                    place: format!("{}:{line}", path.display()),
                    file: path.to_path_buf(),
                    user: None,
                    group: None,
                    listen: None,
                    disable_functions: None,
                    zlib_output_compression: None,
                });
            }
            continue;
        }
        let (k, v) = l.split_once('=').ok_or_else(|| {
            Error::at(path, line, format!("expected \"key = value\", found {l:?}"))
        })?;
        let k = k.trim();
        let mut v = strip_comment(v.trim()).to_string();
        if let Some(q) = v.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
            v = q.to_string();
        } else if v.starts_with('"') {
            return Err(Error::at(path, line, "unterminated quoted value"));
        }
        let place = format!("{}:{line}", path.display());
        match section.as_deref() {
            None | Some("global") => {
                if k == "include" {
                    includes.push((line, v));
                }
            }
            Some(name) => {
                let v = v.replace("$pool", name);
                let Some(pool) = pools.last_mut() else {
                    continue;
                };
                match k {
                    "user" => pool.user = Some(v),
                    "group" => pool.group = Some(v),
                    "listen" => pool.listen = Some(v),
                    _ => {
                        let setting = k
                            .split_once('[')
                            .filter(|(kind, _)| kind.starts_with("php_"))
                            .and_then(|(_, rest)| rest.strip_suffix(']'));
                        match setting {
                            Some("disable_functions") => pool.disable_functions = Some((v, place)),
                            Some("zlib.output_compression") => {
                                pool.zlib_output_compression = Some((v, place))
                            }
                            _ => {}
                        }
                    }
                }
            }
        }
    }
    Ok(Parsed { pools, includes })
}

/// PHP's ini reader ends an unquoted value at `;`.
fn strip_comment(v: &str) -> &str {
    if v.starts_with('"') {
        return v
            .find('"')
            .and_then(|_| v[1..].find('"').map(|e| &v[..e + 2]))
            .unwrap_or(v);
    }
    v.split(';').next().unwrap_or(v).trim_end()
}

/// A setting's value and its `file:line`.
pub type Placed = (String, String);

/// Whether a php.ini-style boolean is on.
pub fn ini_on(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    matches!(v.as_str(), "1" | "on" | "true" | "yes") || v.parse::<u32>().is_ok_and(|n| n > 1)
}

/// A php.ini's `disable_functions` and `zlib.output_compression`, if set.
pub fn php_ini(path: &Path, text: &str) -> (Option<Placed>, Option<Placed>) {
    let mut df = None;
    let mut zlib = None;
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.starts_with(';') || l.starts_with('[') {
            continue;
        }
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let v = strip_comment(v.trim()).trim_matches('"').to_string();
        let place = format!("{}:{}", path.display(), i + 1);
        match k.trim() {
            "disable_functions" => df = Some((v, place)),
            "zlib.output_compression" => zlib = Some((v, place)),
            _ => {}
        }
    }
    (df, zlib)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_users_and_settings() {
        let p = parse(
            Path::new("/p.conf"),
            b"[global]\npid = /run/x.pid\n\n[site-a]\nuser = a\ngroup = ag\nlisten = /run/php/$pool.sock ; comment\nphp_admin_value[disable_functions] = exec,proc_open\n[b]\nuser=\"b\"\nlisten = 127.0.0.1:9001\nphp_admin_flag[zlib.output_compression] = on\n",
        )
        .unwrap();
        assert_eq!(p.pools.len(), 2);
        let a = &p.pools[0];
        assert_eq!(
            (a.user.as_deref(), a.group.as_deref()),
            (Some("a"), Some("ag"))
        );
        assert_eq!(a.listen.as_deref(), Some("/run/php/site-a.sock"));
        assert_eq!(a.disable_functions.as_ref().unwrap().0, "exec,proc_open");
        assert_eq!(a.place, "/p.conf:4");
        assert!(a.serves("unix:/run/php/site-a.sock"));
        let b = &p.pools[1];
        assert_eq!(b.user.as_deref(), Some("b"));
        assert!(b.serves("localhost:9001"));
        assert!(!b.serves("127.0.0.1:9000"));
        assert!(ini_on(&b.zlib_output_compression.as_ref().unwrap().0));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let e = parse(Path::new("/p.conf"), b"[a]\nuser = a\nnonsense\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/p.conf:3: expected \"key = value\", found \"nonsense\""
        );
        let e = parse(Path::new("/p.conf"), b"[a\n").unwrap_err();
        assert!(
            e.to_string().starts_with("/p.conf:1: section header"),
            "{e}"
        );
    }

    #[test]
    fn listen_forms() {
        let pool = |l: &str| Pool {
            name: "p".into(),
            place: String::new(),
            file: PathBuf::new(),
            user: None,
            group: None,
            listen: Some(l.into()),
            disable_functions: None,
            zlib_output_compression: None,
        };
        assert!(pool("9000").serves("10.0.0.1:9000"));
        assert!(pool("[::]:9000").serves("127.0.0.1:9000"));
        assert!(pool("/run/a/../b.sock").serves("unix:/run/b.sock"));
        assert!(!pool("/run/b.sock").serves("127.0.0.1:9000"));
        assert!(!pool("/run/b.sock").serves("unix:$sock"));
    }
}
