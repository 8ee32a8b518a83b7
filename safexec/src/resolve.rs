//! Resolving the tool to a trusted file descriptor.
//!
//! The tool is looked up only in fixed trusted directories, never through PATH. Every path is
//! walked one component at a time with `openat(O_PATH|O_NOFOLLOW)` from `/`: each directory and
//! the final file must be root-owned and not group/other-writable; symlinks are followed by
//! hand (at most 40 hops) so each hop is checked too. The final `O_PATH` descriptor is what gets
//! executed (`execveat(fd, "", …, AT_EMPTY_PATH)`), so no rename between check and exec can
//! swap the file.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::ffi::{CString, OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::msg;
use crate::sys::{self, flags, Stat};

/// Where tools are looked up, in this order.
pub const TRUSTED_DIRS: [&str; 6] = [
    "/usr/bin",
    "/bin",
    "/usr/sbin",
    "/sbin",
    "/usr/local/bin",
    "/usr/local/sbin",
];

const MAX_SYMLINK_HOPS: usize = 40;

/// Why a walk failed.
#[derive(Debug)]
pub enum WalkError {
    /// A component does not exist, or the path is not usable (relative, a loop, not a dir).
    Missing,
    /// A component is not root-owned or is group/other-writable.
    Untrusted(PathBuf),
    /// A symlink where none is allowed.
    Symlink(PathBuf),
}

/// A path walked under the trust rules.
#[derive(Debug)]
pub struct Walked {
    /// `O_PATH` descriptor of the final object.
    pub fd: OwnedFd,
    /// The canonical path (all symlinks resolved).
    pub canonical: PathBuf,
    /// Its status.
    pub stat: Stat,
}

fn trusted(st: &Stat) -> bool {
    st.uid == 0 && st.mode & 0o022 == 0
}

fn cstr(name: &OsStr) -> Option<CString> {
    CString::new(name.as_bytes()).ok()
}

/// Walks an absolute `path` from `/`.
///
/// With `check_trust`, every directory and the final object must be root-owned and not
/// group/other-writable. With `follow`, symlinks are resolved hop by hop; without it any symlink
/// at any level fails the walk (`O_NOFOLLOW` semantics for the whole chain).
pub fn walk(path: &Path, check_trust: bool, follow: bool) -> Result<Walked, WalkError> {
    if !path.is_absolute() {
        return Err(WalkError::Missing);
    }
    let open_root = || sys::openat(None, c"/", flags::O_PATH | flags::O_DIRECTORY, 0);
    let root = open_root().map_err(|_| WalkError::Missing)?;
    let root_st = sys::fstat(root.as_fd()).map_err(|_| WalkError::Missing)?;
    if check_trust && !trusted(&root_st) {
        return Err(WalkError::Untrusted(PathBuf::from("/")));
    }
    // Stack of (name, fd, stat) for the canonical path walked so far; the root is implicit.
    let mut stack: Vec<(OsString, OwnedFd, Stat)> = Vec::new();
    let mut pending: VecDeque<OsString> = components(path);
    let mut hops = 0;
    let mut root_fd = root;
    let current_path = |stack: &Vec<(OsString, OwnedFd, Stat)>| -> PathBuf {
        let mut p = PathBuf::from("/");
        for (n, _, _) in stack {
            p.push(n);
        }
        p
    };
    while let Some(name) = pending.pop_front() {
        if name == ".." {
            stack.pop();
            continue;
        }
        let parent = stack
            .last()
            .map_or(root_fd.as_fd(), |(_, fd, _)| fd.as_fd());
        let parent_is_dir = stack.last().is_none_or(|(_, _, st)| st.is_dir());
        if !parent_is_dir {
            return Err(WalkError::Missing);
        }
        let c = cstr(&name).ok_or(WalkError::Missing)?;
        let fd = sys::openat(Some(parent), &c, flags::O_PATH | flags::O_NOFOLLOW, 0)
            .map_err(|_| WalkError::Missing)?;
        let st = sys::fstat(fd.as_fd()).map_err(|_| WalkError::Missing)?;
        let mut here = current_path(&stack);
        here.push(&name);
        if st.is_symlink() {
            if !follow {
                return Err(WalkError::Symlink(here));
            }
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(WalkError::Missing);
            }
            let target = sys::readlink_fd(fd.as_fd()).map_err(|_| WalkError::Missing)?;
            let target = PathBuf::from(target);
            let mut more = components(&target);
            if target.is_absolute() {
                stack.clear();
                root_fd = open_root().map_err(|_| WalkError::Missing)?;
            }
            more.extend(pending.drain(..));
            pending = more;
            continue;
        }
        if check_trust && !trusted(&st) {
            return Err(WalkError::Untrusted(here));
        }
        stack.push((name, fd, st));
    }
    let canonical = current_path(&stack);
    match stack.pop() {
        Some((_, fd, stat)) => Ok(Walked {
            fd,
            canonical,
            stat,
        }),
        None => Ok(Walked {
            stat: root_st,
            fd: root_fd,
            canonical,
        }),
    }
}

/// Splits a path into its normal components, keeping `..` (resolved against the walked chain,
/// never lexically) and dropping `.` and empty ones.
fn components(p: &Path) -> VecDeque<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect()
}

/// A tool resolved to a trusted executable.
#[derive(Debug)]
pub struct Pinned {
    /// `O_PATH` descriptor that will be executed.
    pub fd: OwnedFd,
    /// The path it was found at (a symlink name stays, for multi-call binaries).
    pub path: PathBuf,
    /// Its canonical path.
    pub canonical: PathBuf,
}

/// The canonical forms of the trusted directories (on merged-/usr systems `/bin` is `/usr/bin`).
fn canonical_trusted_dirs() -> Vec<PathBuf> {
    TRUSTED_DIRS
        .iter()
        .filter_map(|d| walk(Path::new(d), true, true).ok())
        .filter(|w| w.stat.is_dir())
        .map(|w| w.canonical)
        .collect()
}

fn in_trusted_dir(canonical: &Path, dirs: &[PathBuf]) -> bool {
    canonical
        .parent()
        .is_some_and(|p| dirs.iter().any(|d| d == p))
}

fn executable_file(st: &Stat) -> bool {
    st.is_file() && st.mode & 0o111 != 0
}

/// Resolves `token` (a bare name, or an absolute path) to a trusted executable, printing the
/// spec's Info lines for skipped candidates. `Err` carries the final error line.
pub fn pin(token: &OsStr, base: &OsStr) -> Result<Pinned, String> {
    let dirs = canonical_trusted_dirs();
    if token.as_bytes().contains(&b'/') {
        // An explicit path is canonicalised by the trusted walk itself; it must end inside a
        // trusted directory. A relative path is refused: the cwd chain is caller-controlled.
        let p = Path::new(token);
        return match walk(p, true, true) {
            Ok(w) if executable_file(&w.stat) && in_trusted_dir(&w.canonical, &dirs) => {
                Ok(Pinned {
                    fd: w.fd,
                    path: p.to_path_buf(),
                    canonical: w.canonical,
                })
            }
            _ => Err(msg::cannot_resolve(token)),
        };
    }
    for dir in TRUSTED_DIRS {
        let candidate = Path::new(dir).join(base);
        match walk(&candidate, true, true) {
            Ok(w) if executable_file(&w.stat) => {
                if !in_trusted_dir(&w.canonical, &dirs) {
                    msg::diag(&msg::symlink_outside(
                        &candidate.display().to_string(),
                        &w.canonical.display().to_string(),
                    ));
                    continue;
                }
                return Ok(Pinned {
                    fd: w.fd,
                    path: candidate,
                    canonical: w.canonical,
                });
            }
            Ok(_) | Err(WalkError::Missing) | Err(WalkError::Symlink(_)) => continue,
            Err(WalkError::Untrusted(at)) => {
                msg::diag(&msg::untrusted_candidate(
                    &candidate.display().to_string(),
                    &format!(
                        "'{}' is not root-owned or is group/other-writable",
                        at.display()
                    ),
                ));
            }
        }
    }
    Err(msg::cannot_resolve(token))
}

/// Validates an explicit wrapper path (`/usr/bin/nohup`): lexically inside a trusted directory,
/// and its trusted walk must end there too (so `/usr/bin/../../x/nohup` fails).
pub fn check_wrapper_path(token: &OsStr) -> Result<(), String> {
    let p = Path::new(token);
    let lexically_inside = TRUSTED_DIRS.iter().any(|d| {
        p.parent()
            .is_some_and(|parent| parent.as_os_str().as_bytes() == d.as_bytes())
    });
    if !lexically_inside {
        return Err(msg::wrapper_outside(token));
    }
    let dirs = canonical_trusted_dirs();
    match walk(p, true, true) {
        Ok(w) if executable_file(&w.stat) && in_trusted_dir(&w.canonical, &dirs) => Ok(()),
        _ => Err(msg::wrapper_untrusted(token)),
    }
}

/// Opens a configured cache root for use by a job (issue 15 class 4).
///
/// The path is walked from `/` one component at a time with `O_PATH | O_NOFOLLOW`: no symlink
/// at any level; `/` and every ancestor must be a root-owned directory that is not group- or
/// other-writable (otherwise another account could swap the root between our check and the
/// tool's use); the root itself must be a directory owned by root or by `owner_uid`, and not
/// group- or other-writable. The returned `O_PATH` descriptor is the checked directory: the
/// tool is started in it (`fchdir`) and given relative paths, so nothing is resolved twice.
pub fn open_cache_root(path: &Path, owner_uid: u32) -> Result<OwnedFd, String> {
    if !path.is_absolute() {
        return Err("not an absolute path".to_string());
    }
    let mut fd = sys::openat(None, c"/", flags::O_PATH | flags::O_DIRECTORY, 0)
        .map_err(|e| format!("/: {e}"))?;
    let mut st = sys::fstat(fd.as_fd()).map_err(|e| format!("/: {e}"))?;
    let mut here = PathBuf::from("/");
    let names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            _ => None,
        })
        .collect();
    if names.is_empty() || path.components().any(|c| c == Component::ParentDir) {
        return Err("not a normal directory path".to_string());
    }
    for name in &names {
        // Everything walked so far is an ancestor of the root.
        if !st.is_dir() || !trusted(&st) {
            return Err(format!(
                "its ancestor '{}' is not a root-owned directory, or is group/other-writable",
                here.display()
            ));
        }
        let c = cstr(name).ok_or_else(|| "bad name".to_string())?;
        fd = sys::openat(Some(fd.as_fd()), &c, flags::O_PATH | flags::O_NOFOLLOW, 0)
            .map_err(|e| format!("'{}': {e}", here.join(name).display()))?;
        here.push(name);
        st = sys::fstat(fd.as_fd()).map_err(|e| format!("'{}': {e}", here.display()))?;
        if st.is_symlink() {
            return Err(format!("'{}' is a symlink", here.display()));
        }
    }
    if !st.is_dir() {
        return Err("it is not a directory".to_string());
    }
    if st.uid != 0 && st.uid != owner_uid {
        return Err(format!(
            "it is owned by uid {}, neither root nor its owner",
            st.uid
        ));
    }
    if st.mode & 0o022 != 0 {
        return Err("it is group- or other-writable".to_string());
    }
    Ok(fd)
}

/// Walks `rel` (normal components only) below the directory `dir` with `O_PATH | O_NOFOLLOW`;
/// every component must be a directory and none a symlink. `None` on anything else.
pub fn walk_dir_beneath(dir: &OwnedFd, rel: &Path) -> Option<OwnedFd> {
    let mut cur: Option<OwnedFd> = None;
    for c in rel.components() {
        let Component::Normal(name) = c else {
            return None;
        };
        let parent = cur.as_ref().unwrap_or(dir);
        let next = sys::openat(
            Some(parent.as_fd()),
            &cstr(name)?,
            flags::O_PATH | flags::O_NOFOLLOW,
            0,
        )
        .ok()?;
        let st = sys::fstat(next.as_fd()).ok()?;
        if !st.is_dir() {
            return None;
        }
        cur = Some(next);
    }
    match cur {
        Some(fd) => Some(fd),
        None => dir.try_clone().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_system_paths_and_resolves_merged_usr() {
        let w = walk(Path::new("/usr/bin/env"), true, true).expect("walk /usr/bin/env");
        assert!(w.stat.is_file());
        assert_eq!(w.canonical, PathBuf::from("/usr/bin/env"));
        // /bin may be a symlink (merged /usr) or a real directory; either way it resolves.
        let b = walk(Path::new("/bin/sh"), true, true).expect("walk /bin/sh");
        assert!(b.canonical.starts_with("/usr/bin") || b.canonical.starts_with("/bin"));
    }

    #[test]
    fn world_writable_tmp_is_untrusted_and_dotdot_is_walked_not_lexical() {
        assert!(matches!(
            walk(Path::new("/tmp"), true, true),
            Err(WalkError::Untrusted(_))
        ));
        // `..` through a world-writable directory is still checked.
        assert!(walk(Path::new("/usr/bin/../../tmp/x"), true, true).is_err());
        assert!(walk(Path::new("relative/path"), true, true).is_err());
        let w = walk(Path::new("/usr/bin/../bin/env"), true, true).unwrap();
        assert_eq!(w.canonical, PathBuf::from("/usr/bin/env"));
    }

    #[test]
    fn cache_roots_need_trusted_ancestors_and_no_symlinks() {
        // /usr/share: root-owned ancestors, root-owned 0755 directory.
        let fd = open_cache_root(Path::new("/usr/share"), 12345).expect("/usr/share");
        assert!(walk_dir_beneath(&fd, Path::new("doc")).is_some());
        assert!(walk_dir_beneath(&fd, Path::new("../etc")).is_none());
        assert!(walk_dir_beneath(&fd, Path::new("no-such-dir-xyz")).is_none());
        // /tmp is world-writable, so nothing below it can be a cache root.
        let e = open_cache_root(Path::new("/tmp/x"), 0).unwrap_err();
        assert!(e.contains("ancestor '/tmp'"), "{e}");
        assert!(open_cache_root(Path::new("/tmp"), 0)
            .unwrap_err()
            .contains("writable"));
        assert!(open_cache_root(Path::new("relative"), 0).is_err());
        assert!(open_cache_root(Path::new("/usr/../etc"), 0).is_err());
        assert!(open_cache_root(Path::new("/etc/hostname"), 0)
            .unwrap_err()
            .contains("not a directory"));
    }

    #[test]
    fn pins_a_system_tool_and_refuses_relative_paths() {
        let p = pin(OsStr::new("env"), OsStr::new("env")).expect("env is in /usr/bin");
        assert_eq!(p.canonical, PathBuf::from("/usr/bin/env"));
        assert!(pin(OsStr::new("./env"), OsStr::new("env")).is_err());
        assert!(pin(OsStr::new("/tmp/env"), OsStr::new("env")).is_err());
        assert!(pin(
            OsStr::new("no-such-tool-xyz"),
            OsStr::new("no-such-tool-xyz")
        )
        .is_err());
    }
}
