//! Deleting cache entries: the [`PurgeBackend`] the scheduler calls, and [`FsBackend`], an
//! fd-relative implementation.
//!
//! Rules (purge-spec §6): the root is opened once per operation and must belong to the service's
//! own uid; everything below is reached with `openat(O_NOFOLLOW|O_DIRECTORY)` from that
//! descriptor, so a planted symlink is never followed and no path string is checked and then
//! used; only regular files owned by the service's uid are unlinked (`unlinkat` never follows a
//! final link); nginx's in-flight temp files (`<md5>.<10 digits>`) and `*_temp` directories are
//! left alone; directories are kept (nginx recreates missing ones anyway).

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};

use md5::{Digest, Md5};
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::sites::{Site, Target};

/// Counts of one purge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Cache files unlinked.
    pub files: usize,
    /// Entries left alone (symlinks, foreign owners, odd types).
    pub skipped: usize,
}

impl Removed {
    fn add(&mut self, o: Removed) {
        self.files += o.files;
        self.skipped += o.skipped;
    }
}

/// What the service needs from a deletion engine. Every call is blocking and runs on a blocking
/// thread; errors are one line for the client.
pub trait PurgeBackend: Send + Sync + 'static {
    /// Removes every entry of the URL (GET and HEAD keys).
    fn purge_url(&self, site: &Site, t: &Target) -> Result<Removed, String>;
    /// Removes every entry whose key starts with the key of `t` (a prefix).
    fn purge_prefix(&self, site: &Site, t: &Target) -> Result<Removed, String>;
    /// Removes every cache file of the site, keeping its directories.
    fn purge_all(&self, site: &Site) -> Result<Removed, String>;
    /// Removes the file or the level directory's files at `rel` (validated components below the
    /// root; empty = everything). A missing entry is success with nothing removed.
    fn purge_rel(&self, site: &Site, rel: &[String]) -> Result<Removed, String>;
}

/// The fd-relative engine.
#[derive(Debug, Clone, Copy)]
pub struct FsBackend {
    uid: u32,
}

impl FsBackend {
    /// An engine acting as `uid` (the service's effective uid, the cache owner).
    pub fn new(uid: u32) -> FsBackend {
        FsBackend { uid }
    }

    fn open_root(&self, site: &Site) -> Result<OwnedFd, String> {
        // The configured path may pass through administrator-made symlinks (/var/run → /run);
        // from the root on, nothing is followed.
        let fd = rustix::fs::open(
            site.root(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| format!("cannot open cache root {}: {e}", site.root().display()))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| format!("fstat cache root: {e}"))?;
        if st.st_uid != self.uid {
            return Err(format!(
                "cache root {} is not owned by the service's user",
                site.root().display()
            ));
        }
        Ok(fd)
    }

    /// Opens a subdirectory without following links; `Ok(None)` when it does not exist.
    fn subdir(&self, dir: impl AsFd, name: &str) -> Result<Option<OwnedFd>, String> {
        match rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => {
                let st = rustix::fs::fstat(&fd).map_err(|e| format!("fstat {name}: {e}"))?;
                if st.st_uid != self.uid {
                    return Err(format!("{name}: owned by another user, left alone"));
                }
                Ok(Some(fd))
            }
            Err(Errno::NOENT) => Ok(None),
            Err(Errno::LOOP) | Err(Errno::NOTDIR) => Err(format!(
                "{name}: a symlink or not a directory, not followed"
            )),
            Err(e) => Err(format!("open {name}: {e}")),
        }
    }

    /// Unlinks one cache file: `Ok(true)` removed, `Ok(false)` absent, `Err` refused.
    fn unlink_file(&self, dir: impl AsFd, name: &str) -> Result<bool, String> {
        let st = match rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(format!("stat {name}: {e}")),
        };
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(format!("{name}: not a regular file, left alone"));
        }
        if st.st_uid != self.uid {
            return Err(format!("{name}: owned by another user, left alone"));
        }
        match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(format!("unlink {name}: {e}")),
        }
    }

    fn purge_key(&self, root: &OwnedFd, site: &Site, key: &[u8]) -> Result<bool, String> {
        let hex = md5_hex(key);
        let mut dir: Option<OwnedFd> = None;
        for d in level_dirs(&site.levels, &hex) {
            let next = match &dir {
                None => self.subdir(root, d)?,
                Some(fd) => self.subdir(fd, d)?,
            };
            match next {
                Some(fd) => dir = Some(fd),
                None => return Ok(false),
            }
        }
        match &dir {
            Some(fd) => self.unlink_file(fd, &hex),
            None => self.unlink_file(root, &hex),
        }
    }

    /// Walks `dir` (at `depth` levels above the files), unlinking files `pick` accepts.
    fn walk(
        &self,
        dir: &OwnedFd,
        depth: usize,
        top: bool,
        pick: &dyn Fn(&OwnedFd, &str) -> bool,
    ) -> Result<Removed, String> {
        let mut out = Removed::default();
        let mut names = Vec::new();
        let mut rd = Dir::read_from(dir).map_err(|e| format!("read directory: {e}"))?;
        while let Some(ent) = rd.read() {
            let ent = ent.map_err(|e| format!("read directory: {e}"))?;
            let name = ent.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            match std::str::from_utf8(name) {
                Ok(n) => names.push(n.to_owned()),
                Err(_) => out.skipped += 1,
            }
        }
        for name in names {
            if depth > 0 {
                if top && name.ends_with("temp") {
                    // fastcgi_temp, proxy_temp, … and nginx's own `temp` dirs: in-flight data.
                    continue;
                }
                match self.subdir(dir, &name) {
                    Ok(Some(sub)) => out.add(self.walk(&sub, depth - 1, false, pick)?),
                    Ok(None) => {}
                    Err(_) => out.skipped += 1,
                }
            } else if is_cache_name(&name) {
                if !pick(dir, &name) {
                    continue;
                }
                match self.unlink_file(dir, &name) {
                    Ok(true) => out.files += 1,
                    Ok(false) => {}
                    Err(_) => out.skipped += 1,
                }
            } else if !is_temp_name(&name) {
                out.skipped += 1;
            }
        }
        Ok(out)
    }

    fn keys(site: &Site, t: &Target) -> Result<Vec<Vec<u8>>, String> {
        let key = site.key.as_ref().map_err(Clone::clone)?;
        Ok(if key.has_method() {
            vec![key.render(t, "GET"), key.render(t, "HEAD")]
        } else {
            vec![key.render(t, "GET")]
        })
    }
}

impl PurgeBackend for FsBackend {
    fn purge_url(&self, site: &Site, t: &Target) -> Result<Removed, String> {
        let root = self.open_root(site)?;
        let mut out = Removed::default();
        for key in Self::keys(site, t)? {
            if self.purge_key(&root, site, &key)? {
                out.files += 1;
            }
        }
        Ok(out)
    }

    fn purge_prefix(&self, site: &Site, t: &Target) -> Result<Removed, String> {
        let root = self.open_root(site)?;
        let prefixes = Self::keys(site, t)?;
        let uid = self.uid;
        let pick = move |dir: &OwnedFd, name: &str| -> bool {
            match read_key(dir, name, uid) {
                Some(k) => prefixes.iter().any(|p| k.starts_with(p)),
                None => false,
            }
        };
        self.walk(&root, site.levels.len(), true, &pick)
    }

    fn purge_all(&self, site: &Site) -> Result<Removed, String> {
        let root = self.open_root(site)?;
        self.walk(&root, site.levels.len(), true, &|_, _| true)
    }

    fn purge_rel(&self, site: &Site, rel: &[String]) -> Result<Removed, String> {
        let root = self.open_root(site)?;
        let depth = site.levels.len();
        let mut dir = root;
        for (i, c) in rel.iter().enumerate() {
            if i == depth {
                // The file itself (validation made it the last component).
                return Ok(Removed {
                    files: usize::from(self.unlink_file(&dir, c)?),
                    skipped: 0,
                });
            }
            match self.subdir(&dir, c)? {
                Some(fd) => dir = fd,
                None => return Ok(Removed::default()),
            }
        }
        self.walk(&dir, depth - rel.len(), rel.is_empty(), &|_, _| true)
    }
}

/// The level directories of a file name (`levels=1:2`, `…e937` → `7`, `93`).
pub fn level_dirs<'a>(levels: &[usize], hex: &'a str) -> Vec<&'a str> {
    let mut end = hex.len();
    let mut out = Vec::with_capacity(levels.len());
    for &w in levels {
        out.push(&hex[end - w..end]);
        end -= w;
    }
    out
}

/// MD5 as nginx names its files.
pub fn md5_hex(data: &[u8]) -> String {
    let d = Md5::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 lower-case hex digits: a cache file name.
pub fn is_cache_name(n: &str) -> bool {
    n.len() == 32
        && n.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `<md5>.<10 digits>`: nginx's temp file with `use_temp_path=off`, still being written.
fn is_temp_name(n: &str) -> bool {
    n.len() == 43
        && is_cache_name(&n[..32])
        && n.as_bytes()[32] == b'.'
        && n[33..].bytes().all(|b| b.is_ascii_digit())
}

/// Header layout (LP64, version 5; purge-spec §1.1).
const HEADER_SIZE: usize = 336;
const KEY_MARK: &[u8] = b"\nKEY: ";

/// The key of a cache file, read at its fixed offset (never by scanning for `KEY:`), from a
/// regular file of ours with one link, opened without following links or blocking on a FIFO.
fn read_key(dir: &OwnedFd, name: &str, uid: u32) -> Option<Vec<u8>> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let st = rustix::fs::fstat(&fd).ok()?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_uid != uid
        || st.st_nlink != 1
    {
        return None;
    }
    let mut buf = Vec::new();
    std::fs::File::from(fd)
        .take(65_536)
        .read_to_end(&mut buf)
        .ok()?;
    parse_key(&buf).map(<[u8]>::to_vec)
}

/// The key bytes of a cache file's first bytes, if they are a valid version-5 header.
pub fn parse_key(buf: &[u8]) -> Option<&[u8]> {
    if buf.len() < HEADER_SIZE + KEY_MARK.len() + 1 {
        return None;
    }
    let version = u64::from_ne_bytes(buf[0..8].try_into().ok()?);
    let header_start = usize::from(u16::from_ne_bytes(buf[54..56].try_into().ok()?));
    if version != 5 || &buf[HEADER_SIZE..HEADER_SIZE + KEY_MARK.len()] != KEY_MARK {
        return None;
    }
    let start = HEADER_SIZE + KEY_MARK.len();
    if header_start <= start || header_start > buf.len() || buf[header_start - 1] != b'\n' {
        return None;
    }
    Some(&buf[start..header_start - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_levels() {
        let h = md5_hex(b"httpsGETexample.com/");
        assert_eq!(h, "0c6d84446df30d38c2c682134d5ee937");
        assert_eq!(level_dirs(&[1, 2], &h), vec!["7", "93"]);
        assert_eq!(level_dirs(&[2, 2], &h), vec!["37", "e9"]);
        assert!(is_cache_name(&h));
        assert!(is_temp_name(&format!("{h}.0000000042")));
        assert!(!is_cache_name("0C6D84446DF30D38C2C682134D5EE937"));
    }

    #[test]
    fn keys_are_read_at_the_fixed_offset() {
        let key = b"httpGETh/x";
        let mut f = vec![0u8; HEADER_SIZE];
        f[0..8].copy_from_slice(&5u64.to_ne_bytes());
        let hs = (HEADER_SIZE + KEY_MARK.len() + key.len() + 1) as u16;
        f[54..56].copy_from_slice(&hs.to_ne_bytes());
        // A forged line inside the header's ETag area must not count.
        f[60..72].copy_from_slice(b"\nKEY: forged");
        f.extend_from_slice(KEY_MARK);
        f.extend_from_slice(key);
        f.extend_from_slice(b"\nStatus: 200\r\n\r\nKEY: body");
        assert_eq!(parse_key(&f), Some(&key[..]));
        f[0] = 4;
        assert_eq!(parse_key(&f), None);
    }
}
