//! `apply`: the `cache_root` lines of /etc/safexec.conf for the detected caches, merged into
//! the administrator's file (their other lines, comments and order kept), written atomically.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use safexec_conf::{CacheRoot, Principal};

use crate::detect::{Report, Site};
use crate::error::{Error, Result};

/// safexec refuses a configuration file larger than this (safexec-conf's bound).
const MAX_CONF: usize = 64 * 1024;

/// The comment that heads the lines `apply` appends.
const HEADER: &str = "# cache_root lines written by cache-setup apply";

/// The roots the detected sites call for, and notes on caches that cannot be written.
pub fn desired(r: &Report) -> (Vec<CacheRoot>, Vec<String>) {
    let mut roots: Vec<CacheRoot> = Vec::new();
    let mut notes = Vec::new();
    let mut paths: Vec<&str> = Vec::new();
    for s in &r.sites {
        if let Some(p) = &s.cache_path {
            if !paths.contains(&p.as_str()) {
                paths.push(p);
            }
        }
    }
    for path in paths {
        let sites: Vec<&Site> = r
            .sites
            .iter()
            .filter(|s| s.cache_path.as_deref() == Some(path))
            .collect();
        let mut keys: Vec<&str> = sites
            .iter()
            .filter_map(|s| s.location.key.template.as_deref())
            .collect();
        keys.dedup();
        keys.sort();
        keys.dedup();
        let skip = |why: String| format!("{path}: not written: {why}");
        let [key] = keys.as_slice() else {
            notes.push(skip(if keys.is_empty() {
                "no cache key in force".into()
            } else {
                format!("its locations use different keys ({})", keys.join(" | "))
            }));
            continue;
        };
        if key.chars().any(char::is_whitespace) {
            notes.push(skip(format!(
                "the key {key:?} contains a space, which safexec.conf cannot hold"
            )));
            continue;
        }
        let Some(levels) = sites[0].levels.clone() else {
            notes.push(skip("the cache has no levels=".into()));
            continue;
        };
        if r.worker_user == "root" {
            notes.push(skip("nginx's workers run as root".into()));
            continue;
        }
        let mut root = CacheRoot::new(path, r.worker_user.clone());
        root.key = key.to_string();
        root.levels = levels;
        for s in &sites {
            if let Some(u) = &s.pool_user {
                let p = Principal::User(u.clone());
                if u != &r.worker_user && u != "root" && !root.allow.contains(&p) {
                    root.allow.push(p);
                }
            }
            for u in site_urls(s) {
                if !root.urls.contains(&u) {
                    root.urls.push(u);
                }
            }
        }
        if root.allow.is_empty() {
            notes.push(format!(
                "{path}: no PHP-FPM pool user found, so the line allows no caller (root only)"
            ));
        }
        roots.push(root);
    }
    (roots, notes)
}

/// The base URLs of a site: each usable `server_name` with each listen's scheme and port, or
/// the listen address when the names say nothing (`_`, regexes, wildcards).
pub fn site_urls(s: &Site) -> Vec<String> {
    let names: Vec<String> = s
        .names
        .iter()
        .map(|n| n.trim_start_matches('.').to_ascii_lowercase())
        .filter(|n| {
            !n.is_empty()
                && n != "_"
                && !n.starts_with('~')
                && !n.contains(['*', '$', '/'])
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        })
        .collect();
    let mut out = Vec::new();
    for l in &s.listens {
        let Some(port) = l.port else { continue };
        let scheme = if l.ssl { "https" } else { "http" };
        let suffix = if port == if l.ssl { 443 } else { 80 } {
            String::new()
        } else {
            format!(":{port}")
        };
        let hosts: Vec<String> = if names.is_empty() {
            match l.addr.as_str() {
                "*" | "0.0.0.0" | "[::]" | "" => vec![],
                a => vec![a.to_string()],
            }
        } else {
            names.clone()
        };
        for h in hosts {
            let u = format!("{scheme}://{h}{suffix}");
            if !out.contains(&u) {
                out.push(u);
            }
        }
    }
    out
}

/// The new file text: each existing `cache_root` line for a desired path is updated in place
/// (its `allow=` and `url=` entries kept alongside the detected ones), missing lines are
/// appended under one comment, and everything else stays byte for byte.
pub fn merge(old: &str, file: &Path, want: &[CacheRoot]) -> Result<String> {
    safexec_conf::parse(old.as_bytes()).map_err(|e| {
        Error::Msg(format!(
            "{}:{}: {}; fix it first (nothing written)",
            file.display(),
            e.line,
            e.message
        ))
    })?;
    let mut lines: Vec<String> = old.lines().map(str::to_string).collect();
    let mut placed = vec![false; want.len()];
    let mut changed = false;
    for line in lines.iter_mut() {
        let t = line.trim();
        let is_root = t
            .split_once('=')
            .is_some_and(|(k, _)| k.trim() == "cache_root");
        if !is_root {
            continue;
        }
        let Ok(cfg) = safexec_conf::parse(t.as_bytes()) else {
            continue;
        };
        let Some(have) = cfg.cache_roots.first() else {
            continue;
        };
        let Some(i) = want.iter().position(|w| w.path == have.path) else {
            continue;
        };
        if placed[i] {
            continue;
        }
        placed[i] = true;
        let mut new = want[i].clone();
        for p in &have.allow {
            if !new.allow.contains(p) {
                new.allow.push(p.clone());
            }
        }
        for u in &have.urls {
            if !new.urls.contains(u) {
                new.urls.push(u.clone());
            }
        }
        if &new != have {
            *line = format!("cache_root = {new}");
            changed = true;
        }
    }
    let missing: Vec<&CacheRoot> = want
        .iter()
        .zip(&placed)
        .filter(|(_, p)| !**p)
        .map(|(w, _)| w)
        .collect();
    if !missing.is_empty() {
        changed = true;
        if !lines.iter().any(|l| l.trim() == HEADER) {
            if lines.last().is_some_and(|l| !l.trim().is_empty()) {
                lines.push(String::new());
            }
            lines.push(HEADER.to_string());
        }
        for m in missing {
            lines.push(format!("cache_root = {m}"));
        }
    }
    if !changed {
        return Ok(old.to_string());
    }
    let mut text = lines.join("\n");
    text.push('\n');
    if text.len() > MAX_CONF {
        return Err(Error::Msg(format!(
            "the merged {} would be {} bytes, over the {MAX_CONF} safexec reads; nothing written",
            file.display(),
            text.len()
        )));
    }
    safexec_conf::parse(text.as_bytes()).map_err(|e| {
        Error::Msg(format!(
            "the merged {} would not parse (line {}: {}); nothing written",
            file.display(),
            e.line,
            e.message
        ))
    })?;
    Ok(text)
}

/// Refuses a `--config` that names one of the nginx or PHP-FPM files just read: apply never
/// writes those.
pub fn refuse_foreign(file: &Path, r: &Report) -> Result<()> {
    let target = fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
    for f in r
        .nginx_files
        .iter()
        .chain(&r.fpm_files)
        .map(Path::new)
        .chain(r.pools.iter().map(|p| p.pool.file.as_path()))
    {
        let f = fs::canonicalize(f).unwrap_or_else(|_| f.to_path_buf());
        if f == target {
            return Err(Error::Msg(format!(
                "{} is one of nginx's or PHP-FPM's own files; apply writes only the safexec configuration (nothing written)",
                file.display()
            )));
        }
    }
    Ok(())
}

/// A unified diff of the change.
pub fn diff(old: &str, new: &str, file: &Path) -> String {
    let shown = file.display().to_string();
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&shown, &format!("{shown} (cache-setup apply)"))
        .to_string()
}

/// Reads the current file ("" when it does not exist). A symlink is refused: the rename would
/// replace the link, not the file the administrator meant.
pub fn read_current(file: &Path) -> Result<Option<String>> {
    match fs::symlink_metadata(file) {
        Ok(md) if md.file_type().is_symlink() => Err(Error::Msg(format!(
            "{} is a symlink; give the real file with --config (nothing written)",
            file.display()
        ))),
        Ok(md) if !md.is_file() => Err(Error::Msg(format!(
            "{} is not a regular file (nothing written)",
            file.display()
        ))),
        Ok(_) => {
            let b = fs::read(file).map_err(|e| Error::io("read", file, e))?;
            String::from_utf8(b)
                .map(Some)
                .map_err(|_| Error::Msg(format!("{}: not UTF-8 (nothing written)", file.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", file, e)),
    }
}

/// Replaces `file` with `text`: a temp file in the same directory, root:root 0644, fsynced,
/// renamed over the file, then the directory fsynced. The previous version, if any, is kept as
/// `FILE.bak` (written the same way) before the rename.
pub fn write(file: &Path, text: &str, old: Option<&str>) -> Result<Option<PathBuf>> {
    let backup = match old {
        Some(old) => {
            let b = PathBuf::from(format!("{}.bak", file.display()));
            replace(&b, old)?;
            Some(b)
        }
        None => None,
    };
    replace(file, text)?;
    Ok(backup)
}

fn replace(file: &Path, text: &str) -> Result<()> {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.cache-setup.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io("write", &tmp, e))?;
        std::os::unix::fs::fchown(&f, Some(0), Some(0)).map_err(|e| {
            Error::Msg(format!(
                "cannot make {} root-owned: {e} (apply must run as root)",
                tmp.display()
            ))
        })?;
        f.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(|e| Error::io("chmod", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
        let md = f.metadata().map_err(|e| Error::io("stat", &tmp, e))?;
        if md.uid() != 0 || md.mode() & 0o7777 != 0o644 {
            return Err(Error::Msg(format!(
                "{} is not root:root 0644 after chown/chmod",
                tmp.display()
            )));
        }
        fs::rename(&tmp, file).map_err(|e| Error::io("rename onto", file, e))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("fsync", dir, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(path: &str, allow: &[&str], urls: &[&str]) -> CacheRoot {
        let mut r = CacheRoot::new(path, "www-data");
        r.allow = allow
            .iter()
            .map(|a| Principal::User(a.to_string()))
            .collect();
        r.urls = urls.iter().map(|u| u.to_string()).collect();
        r
    }

    #[test]
    fn appends_once_and_is_idempotent() {
        let old = "# admin's comment\njob_user = nobody\n";
        let want = [root("/var/cache/nginx/a", &["asite"], &["http://a.test"])];
        let new = merge(old, Path::new("/etc/safexec.conf"), &want).unwrap();
        assert_eq!(
            new,
            "# admin's comment\njob_user = nobody\n\n# cache_root lines written by cache-setup apply\ncache_root = /var/cache/nginx/a www-data allow=asite key=$scheme$request_method$host$request_uri levels=1:2 url=http://a.test\n"
        );
        assert_eq!(merge(&new, Path::new("/x"), &want).unwrap(), new);
    }

    #[test]
    fn updates_in_place_keeping_admin_principals() {
        let old = "cache_root = /var/cache/nginx/a www-data allow=@admins key=$scheme$host$request_uri levels=2\n# tail\n";
        let want = [root("/var/cache/nginx/a", &["asite"], &[])];
        let new = merge(old, Path::new("/x"), &want).unwrap();
        assert_eq!(new, "cache_root = /var/cache/nginx/a www-data allow=asite,@admins key=$scheme$request_method$host$request_uri levels=1:2\n# tail\n");
    }

    #[test]
    fn a_broken_file_is_refused() {
        let e = merge("bogus line\n", Path::new("/etc/safexec.conf"), &[]).unwrap_err();
        assert!(e.to_string().starts_with("/etc/safexec.conf:1: "), "{e}");
    }

    fn site(names: &[&str], listens: &[(&str, Option<u16>, bool)]) -> Site {
        use crate::nginx::model::{CachedLocation, Key, Kind, Listen};
        Site {
            server: 0,
            names: names.iter().map(|n| n.to_string()).collect(),
            listens: listens
                .iter()
                .map(|(a, p, ssl)| Listen {
                    addr: a.to_string(),
                    port: *p,
                    ssl: *ssl,
                })
                .collect(),
            location: CachedLocation {
                context: "location /".into(),
                place: "f:1".into(),
                kind: Kind::Fastcgi,
                zone: "z".into(),
                zone_place: "f:1".into(),
                key: Key {
                    template: Some("$scheme$host$request_uri".into()),
                    origin: "set here".into(),
                    place: None,
                },
                pass: "unix:/s".into(),
                endpoints: vec!["unix:/s".into()],
                ignore_headers: None,
                http_host_param: None,
                open_file_cache: None,
            },
            cache_path: Some("/var/cache/nginx/z".into()),
            levels: Some("1:2".into()),
            pool: Some(0),
            pool_user: Some("zsite".into()),
            pool_group: None,
        }
    }

    #[test]
    fn urls_from_names_ports_and_schemes() {
        let s = site(
            &[
                "Example.com",
                "*.example.com",
                "~^www",
                "_",
                ".shop.example",
            ],
            &[
                ("*", Some(80), false),
                ("[::]", Some(443), true),
                ("*", Some(8080), false),
            ],
        );
        assert_eq!(
            site_urls(&s),
            [
                "http://example.com",
                "http://shop.example",
                "https://example.com",
                "https://shop.example",
                "http://example.com:8080",
                "http://shop.example:8080"
            ]
        );
        // No usable name: a specific listen address stands in; a wildcard one gives nothing.
        let s = site(
            &["_"],
            &[("127.0.0.1", Some(8081), false), ("*", Some(80), false)],
        );
        assert_eq!(site_urls(&s), ["http://127.0.0.1:8081"]);
    }

    #[test]
    fn desired_roots_from_sites() {
        let r = Report {
            source: String::new(),
            main: String::new(),
            nginx_files: vec![],
            worker_user: "www-data".into(),
            worker_user_set: true,
            caches: vec![],
            servers: vec![],
            sites: vec![site(&["a.test"], &[("*", Some(80), false)])],
            pools: vec![],
            fpm_files: vec![],
        };
        let (roots, notes) = desired(&r);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(
            format!("cache_root = {}", roots[0]),
            "cache_root = /var/cache/nginx/z www-data allow=zsite key=$scheme$host$request_uri levels=1:2 url=http://a.test"
        );
        let mut r2 = r.clone();
        r2.sites[0].levels = None;
        let (roots, notes) = desired(&r2);
        assert!(
            roots.is_empty() && notes[0].contains("no levels="),
            "{notes:?}"
        );
        let mut r3 = r.clone();
        let mut other = r.sites[0].clone();
        other.location.key.template = Some("$scheme$request_method$host$request_uri".into());
        r3.sites.push(other);
        let (roots, notes) = desired(&r3);
        assert!(
            roots.is_empty() && notes[0].contains("different keys"),
            "{notes:?}"
        );
    }

    #[test]
    fn diff_is_unified() {
        let d = diff("a\n", "a\nb\n", Path::new("/f"));
        assert!(d.contains("--- /f\n+++ /f (cache-setup apply)\n@@"), "{d}");
        assert!(d.contains("\n+b\n"), "{d}");
    }
}
