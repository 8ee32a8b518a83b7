//! Where nginx stores each page, for `--cache-path`, `--index-out` and `--replay-keys`.
//!
//! The nginx cache knowledge itself (key templates, MD5, `levels=` paths, the on-disk header and
//! its `KEY:` line) lives in the `nginx-cache` crate, shared with `cache-purge`; this module
//! re-exports it and adds what only the crawler does: the per-URL index it writes and the walk
//! that recovers request targets from an existing cache.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nginx_cache::{is_cache_file_name, md5_hex, Entry, Header, HeaderError};
pub use nginx_cache::{replay_target, KeyRequest, KeyTemplate, Levels, ReplayTarget, DEFAULT_KEY};

use crate::config::CacheIndex;

/// How much of a cache file is read to find its `KEY:` line. nginx's `header_start` is a
/// `u_short`, so the header and key of a real entry always fit in 64 KiB.
pub const KEY_READ_LIMIT: u64 = 64 * 1024;

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

/// Reads the key of an nginx cache file, looking at most [`KEY_READ_LIMIT`] bytes. The file is
/// opened without following a symlink and without blocking on a FIFO, and must be a regular file.
pub fn read_key(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc_flags())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let mut buf = Vec::new();
    file.take(KEY_READ_LIMIT).read_to_end(&mut buf)?;
    Ok(key_from_bytes(&buf).map(<[u8]>::to_vec))
}

/// `O_NOFOLLOW | O_NONBLOCK`: a planted symlink is not followed, a planted FIFO does not block.
fn libc_flags() -> i32 {
    nginx_cache::OPEN_FLAGS
}

/// The key of the cache file starting with `head`.
///
/// A version-5 nginx entry is read at the header's fixed offset ([`Entry::parse`]), so a `KEY:`
/// line forged through an upstream ETag or the body is never taken. Only a file too short to
/// hold nginx's header at all (hand-made test fixtures, which nginx would treat as a miss) falls
/// back to its first `\nKEY: …\n` line.
pub fn key_from_bytes(head: &[u8]) -> Option<&[u8]> {
    match Header::parse(head) {
        Ok(_) => Entry::parse(head).ok().map(|e| {
            let start = nginx_cache::KEY_OFFSET;
            &head[start..start + e.key.len()]
        }),
        Err(HeaderError::TooShort) => {
            const MARK: &[u8] = nginx_cache::KEY_MARK;
            let start = head.windows(MARK.len()).position(|w| w == MARK)? + MARK.len();
            let len = head[start..].iter().position(|b| *b == b'\n')?;
            Some(&head[start..start + len])
        }
        Err(_) => None,
    }
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
        let md5 = md5_hex(&key);
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

/// The JSON-lines record: `{"url":…,"key":…,"md5":…,"file":…,"on_disk":…}`, plus
/// `"found_key"` when the file holds another key.
impl serde::Serialize for IndexEntry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Record<'a> {
            url: &'a str,
            key: &'a str,
            md5: &'a str,
            file: std::borrow::Cow<'a, str>,
            on_disk: Option<&'static str>,
            #[serde(skip_serializing_if = "Option::is_none")]
            found_key: Option<&'a str>,
        }
        Record {
            url: &self.url,
            key: &self.key,
            md5: &self.md5,
            file: self.file.to_string_lossy(),
            on_disk: self.check.as_ref().map(FileCheck::as_str),
            found_key: match &self.check {
                Some(FileCheck::KeyMismatch(k)) => Some(k),
                _ => None,
            },
        }
        .serialize(s)
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
            Err(e) => scan.skipped.push((path, e.to_string())),
        }
    }
    Ok(scan)
}

fn collect_files(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let path = entry.path();
        if ty.is_dir() && depth < 3 {
            collect_files(&path, depth + 1, out)?;
        } else if ty.is_file() && is_cache_file_name(entry.file_name().as_encoded_bytes()) {
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
    fn key_line_parsing() {
        let file = Header {
            etag: b"KEY: https".to_vec(),
            ..Header::default()
        }
        .encode(
            b"httpsGETexample.com/a/",
            b"Status: 200 OK\r\n\r\nKEY: httpsGETexample.com/victim/\n",
        );
        // The ETag forgery and the body line are never taken for the key.
        assert_eq!(key_from_bytes(&file), Some(&b"httpsGETexample.com/a/"[..]));
        let mut v4 = file.clone();
        v4[0] = 4;
        assert_eq!(key_from_bytes(&v4), None);
        assert_eq!(key_from_bytes(b"\nKEY: unterminated"), None);
        assert_eq!(key_from_bytes(b"KEY: no-leading-newline\n"), None);
        assert_eq!(key_from_bytes(b""), None);
    }

    fn write_cache_file(base: &Path, levels: &Levels, key: &str) -> PathBuf {
        let md5 = md5_hex(key.as_bytes());
        let path = levels.file_path(base, &md5);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let body = Header::default().encode(key.as_bytes(), b"Status: 200 OK\r\n\r\n<html>");
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
        let json = serde_json::to_string(&hit).unwrap();
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
        assert!(serde_json::to_string(&e)
            .unwrap()
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
}
