//! cache-purge's key index directory under safexec: `/var/lib/cache-purge/<owner>`.
//!
//! cache-purge keeps its SQLite key index outside the cache. Run by `safexec cache-purge` as the
//! cache owner, it can neither create its default directory (root's `/var/lib`) nor write there
//! (outside its Landlock write set), so every variant purge scanned the whole cache. safexec,
//! still root, prepares one directory per owner and hands it over: `/var/lib/cache-purge` is
//! root-owned 0755 (no other account can create, rename or replace entries in it), each owner's
//! directory is the owner's, 0700. Everything is done with `*at()` calls on descriptors opened
//! with `O_NOFOLLOW`, and checked with `fstat`. When any check fails the purge still runs, with
//! `--no-index` (fail closed: no index rather than one another account could touch).
#![forbid(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use crate::sys::{self, flags, Gid, Uid};

/// Where the base directory is created.
pub const PARENT: &str = "/var/lib";
/// The base directory's name (cache-purge's default index directory).
pub const NAME: &str = "cache-purge";

fn err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

fn cname(name: &str) -> Result<CString, String> {
    CString::new(name).map_err(|_| format!("bad name '{name}'"))
}

/// Opens an absolute directory path component by component, never following a symlink.
fn open_dir_nofollow(path: &Path) -> Result<OwnedFd, String> {
    let mut fd = sys::openat(
        None,
        c"/",
        flags::O_PATH | flags::O_DIRECTORY | flags::O_NOFOLLOW,
        0,
    )
    .map_err(|e| err(Path::new("/"), e))?;
    if !path.is_absolute() {
        return Err(format!("{}: not an absolute path", path.display()));
    }
    for c in path.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => {
                let name = cname(&n.to_string_lossy())?;
                fd = sys::openat(
                    Some(fd.as_fd()),
                    &name,
                    flags::O_PATH | flags::O_DIRECTORY | flags::O_NOFOLLOW,
                    0,
                )
                .map_err(|e| err(path, e))?;
            }
            Component::ParentDir | Component::Prefix(_) => {
                return Err(format!("{}: not a plain path", path.display()));
            }
        }
    }
    Ok(fd)
}

/// Creates `name` in `dir` (mode 0700 until fixed up), then opens it without following a
/// symlink. `Ok((fd, created))`.
fn make_and_open(dir: &OwnedFd, name: &CString, path: &Path) -> Result<(OwnedFd, bool), String> {
    let created = match sys::mkdirat(dir.as_fd(), name, 0o700) {
        Ok(()) => true,
        Err(e) if e.raw_os_error() == Some(flags::EEXIST) => false,
        Err(e) => return Err(err(path, e)),
    };
    let fd = sys::openat(
        Some(dir.as_fd()),
        name,
        flags::O_RDONLY | flags::O_DIRECTORY | flags::O_NOFOLLOW,
        0,
    )
    .map_err(|e| err(path, e))?;
    Ok((fd, created))
}

/// Prepares `/var/lib/cache-purge/<owner>` for the owner `uid:gid`; `Ok` is the directory to
/// pass as `--index-dir`, `Err` the reason it is not used.
pub fn prepare(owner: &str, uid: Uid, gid: Gid) -> Result<PathBuf, String> {
    prepare_in(Path::new(PARENT), NAME, owner, uid, gid)
}

/// [`prepare`] with the parent directory and the base name as parameters (tests use a
/// temporary directory). Must run as root.
pub fn prepare_in(
    parent: &Path,
    name: &str,
    owner: &str,
    uid: Uid,
    gid: Gid,
) -> Result<PathBuf, String> {
    // The owner name becomes one path component: nothing that could leave the base.
    if owner.is_empty() || owner == "." || owner == ".." || owner.contains('/') {
        return Err(format!("owner name '{owner}' cannot name a directory"));
    }
    if uid.0 == 0 {
        return Err("the owner is root".to_string());
    }
    let parent_fd = open_dir_nofollow(parent)?;
    let base_path = parent.join(name);
    let (base, created) = make_and_open(&parent_fd, &cname(name)?, &base_path)?;
    if created {
        // safexec is setuid, not setgid: a new directory would get the caller's group.
        sys::fchown(base.as_fd(), Uid(0), Gid(0)).map_err(|e| err(&base_path, e))?;
        sys::fchmod(base.as_fd(), 0o755).map_err(|e| err(&base_path, e))?;
    }
    let st = sys::fstat(base.as_fd()).map_err(|e| err(&base_path, e))?;
    if !st.is_dir() || st.uid != 0 || st.mode & 0o022 != 0 {
        return Err(format!(
            "{} is not a root-owned directory closed to other writers",
            base_path.display()
        ));
    }
    let dir_path = base_path.join(owner);
    let (dir, created) = make_and_open(&base, &cname(owner)?, &dir_path)?;
    if created {
        sys::fchown(dir.as_fd(), uid, gid).map_err(|e| err(&dir_path, e))?;
        sys::fchmod(dir.as_fd(), 0o700).map_err(|e| err(&dir_path, e))?;
    }
    let st = sys::fstat(dir.as_fd()).map_err(|e| err(&dir_path, e))?;
    if !st.is_dir() || st.uid != uid.0 || st.mode & 0o022 != 0 {
        return Err(format!(
            "{} is not a directory of uid {} closed to other writers",
            dir_path.display(),
            uid.0
        ));
    }
    Ok(dir_path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    const OWNER: Uid = Uid(65534);
    const OWNER_GID: Gid = Gid(65534);

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("safexec-indexdir-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        d
    }

    fn is_root() -> bool {
        sys::geteuid().0 == 0
    }

    #[test]
    fn creates_root_base_and_owner_dir_and_reuses_them() {
        assert!(is_root(), "this test needs root (it chowns)");
        let d = scratch("ok");
        let got = prepare_in(&d, "cp", "www", OWNER, OWNER_GID).unwrap();
        assert_eq!(got, d.join("cp/www"));
        let base = std::fs::symlink_metadata(d.join("cp")).unwrap();
        assert_eq!(
            (base.uid(), base.gid(), base.mode() & 0o7777),
            (0, 0, 0o755)
        );
        let own = std::fs::symlink_metadata(&got).unwrap();
        assert_eq!(
            (own.uid(), own.gid(), own.mode() & 0o7777),
            (OWNER.0, OWNER_GID.0, 0o700)
        );
        // A second run takes them as they are.
        assert_eq!(prepare_in(&d, "cp", "www", OWNER, OWNER_GID).unwrap(), got);
        // Names that would leave the base are refused before anything is touched.
        for bad in ["", ".", "..", "a/b"] {
            assert!(
                prepare_in(&d, "cp", bad, OWNER, OWNER_GID).is_err(),
                "{bad}"
            );
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlinked_or_open_base_and_foreign_owner_dirs_are_not_used() {
        assert!(is_root(), "this test needs root (it chowns)");
        let d = scratch("bad");
        // The base is a symlink to a directory that would otherwise pass.
        let real = d.join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&real, d.join("link")).unwrap();
        assert!(prepare_in(&d, "link", "www", OWNER, OWNER_GID).is_err());
        assert!(
            !real.join("www").exists(),
            "nothing created through the link"
        );
        // A symlink in the parent path is not followed either.
        assert!(prepare_in(&d.join("link"), "cp", "www", OWNER, OWNER_GID).is_err());
        // Group- or other-writable base.
        for mode in [0o775, 0o757, 0o777] {
            let b = d.join(format!("open{mode:o}"));
            std::fs::create_dir(&b).unwrap();
            std::fs::set_permissions(&b, std::fs::Permissions::from_mode(mode)).unwrap();
            assert!(prepare_in(&d, &format!("open{mode:o}"), "www", OWNER, OWNER_GID).is_err());
            assert!(!b.join("www").exists());
        }
        // A base not owned by root.
        let b = d.join("theirs");
        std::fs::create_dir(&b).unwrap();
        std::os::unix::fs::chown(&b, Some(OWNER.0), Some(OWNER_GID.0)).unwrap();
        assert!(prepare_in(&d, "theirs", "www", OWNER, OWNER_GID).is_err());
        // Owner entries: a symlink, a file, another uid's directory, a group-writable one.
        let b = d.join("cp");
        std::fs::create_dir(&b).unwrap();
        std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&real, b.join("link")).unwrap();
        std::fs::write(b.join("file"), "").unwrap();
        std::fs::create_dir(b.join("rootdir")).unwrap();
        std::fs::create_dir(b.join("gw")).unwrap();
        std::os::unix::fs::chown(b.join("gw"), Some(OWNER.0), Some(OWNER_GID.0)).unwrap();
        std::fs::set_permissions(b.join("gw"), std::fs::Permissions::from_mode(0o770)).unwrap();
        for name in ["link", "file", "rootdir", "gw"] {
            assert!(
                prepare_in(&d, "cp", name, OWNER, OWNER_GID).is_err(),
                "{name}"
            );
        }
        // Root as the owner is never given a directory.
        assert!(prepare_in(&d, "cp", "root", Uid(0), Gid(0)).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
