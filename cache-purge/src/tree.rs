//! The fd-relative view of one cache directory: every lookup starts at the root's descriptor,
//! never follows a symbolic link, never crosses a mount point and only acts on what the cache
//! owner owns.
//!
//! * The root is opened component by component from `/` with `O_NOFOLLOW`, checking each
//!   ancestor (owned by root or the cache owner; not writable by others unless sticky), so the
//!   descriptor kept is the directory that was checked.
//! * A level directory is reached with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//!   RESOLVE_NO_XDEV | RESOLVE_NO_MAGICLINKS)` where the kernel has it (Linux ≥ 5.6), else one
//!   `openat(O_NOFOLLOW | O_DIRECTORY)` per component comparing `st_dev` with the root's.
//! * A directory is used only if the cache owner owns it and nobody else can write to it: then
//!   no other user can swap a name between the checks below and the `unlinkat`.
//! * A file is deleted only if `fstatat(AT_SYMLINK_NOFOLLOW)` says regular, owned by the cache
//!   owner, one link; files whose key matters are opened `O_NOFOLLOW | O_NONBLOCK` (a FIFO never
//!   blocks) and re-checked with `fstat` on the descriptor read.

use std::collections::HashSet;
use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::path::{Component, Path, PathBuf};

use nginx_cache::{is_cache_file_name, Entry, Levels};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use crate::Error;

/// Why an entry was left alone.
pub type Reason = String;

/// Whether a leaf directory (relative path, mtime in ns) is unchanged since it was last read.
pub type Unchanged<'a> = &'a dyn Fn(&str, i64) -> bool;

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY);

/// Ancestors of the root are only `fstat`ed and walked through: `O_PATH` opens them without
/// read access, which a Landlock ruleset (safexec's, allowing only the cache root) permits.
const PATH_FLAGS: OFlags = OFlags::PATH
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

const FILE_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::NONBLOCK)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOCTTY);

/// A directory of the tree, opened and checked.
pub struct DirHandle {
    fd: OwnedFd,
    /// Its path relative to the root (`c/29`; empty for the root itself).
    pub rel: String,
    /// Its modification time in nanoseconds, as checked.
    pub mtime_ns: i64,
}

/// What [`Tree::inspect`] found at a name.
pub enum Found {
    /// Nothing there.
    Missing,
    /// Not something this tool may delete.
    Unsafe(Reason),
    /// A regular file of the cache owner whose header could not be parsed.
    Unparsed(Reason),
    /// A cache entry of the owner.
    Entry(Entry),
}

/// One cache directory tree, opened fd-relative.
pub struct Tree {
    root: OwnedFd,
    dev: u64,
    owner: u32,
    path: PathBuf,
    levels: Levels,
    use_openat2: bool,
}

fn os_err(what: &str, e: Errno) -> Error {
    Error::Failed(format!("{what}: {}", std::io::Error::from(e)))
}

/// The file type of a `Stat`, as a word for messages.
fn type_word(st: &Stat) -> &'static str {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symlink",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "unknown file type",
    }
}

#[allow(clippy::useless_conversion)] // st_nlink/st_dev widths differ between architectures
fn nlink(st: &Stat) -> u64 {
    u64::try_from(st.st_nlink).unwrap_or(u64::MAX)
}

#[allow(clippy::useless_conversion)]
fn dev(st: &Stat) -> u64 {
    u64::try_from(st.st_dev).unwrap_or(u64::MAX)
}

#[allow(clippy::useless_conversion)]
fn mtime_ns(st: &Stat) -> i64 {
    let s = i64::try_from(st.st_mtime).unwrap_or(0);
    let ns = i64::try_from(st.st_mtime_nsec).unwrap_or(0);
    s.saturating_mul(1_000_000_000).saturating_add(ns)
}

impl Tree {
    /// Opens and checks the cache root at `path` for the cache owner `owner` (uid).
    ///
    /// Refused: a relative path, `/`, `..` components, a final component that is a symlink or
    /// not a directory, an ancestor not owned by root or the owner, an ancestor writable by
    /// group or others without the sticky bit, a root not owned by the owner, a root holding
    /// `wp-config.php`, `wp-settings.php` or `index.php` (a site, not a cache).
    ///
    /// `.` is the one relative path accepted: the current directory, which is how `safexec`
    /// hands over the root it checked and entered. It is checked like any root, by its real
    /// path (`getcwd`), and must be the same directory (device and inode) as the one started in.
    pub fn open(path: &Path, owner: u32, levels: Levels) -> Result<Tree, Error> {
        if path == Path::new(".") {
            let here = rustix::fs::open(".", DIR_FLAGS, Mode::empty()).map_err(|e| {
                Error::Refused(format!("cache path .: {}", std::io::Error::from(e)))
            })?;
            let real = std::env::current_dir()
                .map_err(|e| Error::Refused(format!("cache path .: {e}")))?;
            let tree = Self::open(&real, owner, levels)?;
            let a = rustix::fs::fstat(&here).map_err(|e| os_err("fstat", e))?;
            let b = rustix::fs::fstat(&tree.root).map_err(|e| os_err("fstat", e))?;
            if (dev(&a), a.st_ino) != (dev(&b), b.st_ino) {
                return Err(Error::Refused(format!(
                    "cache path .: the current directory is no longer {}",
                    real.display()
                )));
            }
            return Ok(tree);
        }
        let shown = path.display();
        if !path.is_absolute() {
            return Err(Error::Refused(format!(
                "cache path {shown}: not an absolute path"
            )));
        }
        let mut names: Vec<&OsStr> = Vec::new();
        for c in path.components() {
            match c {
                Component::RootDir => {}
                Component::Normal(n) => names.push(n),
                Component::CurDir => {}
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(Error::Refused(format!(
                        "cache path {shown}: \"..\" is not allowed"
                    )))
                }
            }
        }
        if names.is_empty() {
            return Err(Error::Refused(format!("cache path {shown}: refusing /")));
        }
        let refuse = |m: String| Error::Refused(format!("cache path {shown}: {m}"));
        let mut cur =
            rustix::fs::open("/", PATH_FLAGS, Mode::empty()).map_err(|e| os_err("open /", e))?;
        let mut so_far = PathBuf::from("/");
        let last = names.len() - 1;
        for (i, name) in names.iter().enumerate() {
            let st = rustix::fs::fstat(&cur).map_err(|e| os_err("fstat", e))?;
            // `cur` is an ancestor of the root: only root or the owner may control it, and if
            // others can write to it, the sticky bit must stop them renaming our next component.
            if st.st_uid != 0 && st.st_uid != owner {
                return Err(refuse(format!(
                    "{} is owned by uid {}, not root or the cache owner",
                    so_far.display(),
                    st.st_uid
                )));
            }
            if st.st_mode & 0o022 != 0 && st.st_mode & 0o1000 == 0 {
                return Err(refuse(format!(
                    "{} is writable by others and not sticky",
                    so_far.display()
                )));
            }
            let lst = rustix::fs::statat(&cur, *name, AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|e| refuse(format!("{}", std::io::Error::from(e))))?;
            so_far.push(name);
            match FileType::from_raw_mode(lst.st_mode) {
                FileType::Directory => {}
                FileType::Symlink if i == last => {
                    return Err(refuse("is a symlink (give the real directory)".into()))
                }
                FileType::Symlink => {
                    return Err(refuse(format!(
                        "{} is a symlink (give the real path)",
                        so_far.display()
                    )))
                }
                _ => return Err(refuse("not a directory".into())),
            }
            if i != last && lst.st_uid != 0 && lst.st_uid != owner {
                return Err(refuse(format!(
                    "{} is owned by uid {}, not root or the cache owner",
                    so_far.display(),
                    lst.st_uid
                )));
            }
            // Only the root itself is opened for reading (to list it); ancestors stay O_PATH.
            let flags = if i == last { DIR_FLAGS } else { PATH_FLAGS };
            cur = rustix::fs::openat(&cur, *name, flags, Mode::empty())
                .map_err(|e| refuse(format!("{}", std::io::Error::from(e))))?;
        }
        let st = rustix::fs::fstat(&cur).map_err(|e| os_err("fstat", e))?;
        if st.st_uid != owner {
            return Err(refuse(format!(
                "owned by uid {}, not the cache owner (uid {owner})",
                st.st_uid
            )));
        }
        for site_file in ["wp-config.php", "wp-settings.php", "index.php"] {
            if rustix::fs::statat(&cur, site_file, AtFlags::SYMLINK_NOFOLLOW).is_ok() {
                return Err(refuse(format!(
                    "holds {site_file}: this is a site, not an nginx cache"
                )));
            }
        }
        let probe = rustix::fs::openat2(
            &cur,
            ".",
            DIR_FLAGS,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS,
        );
        Ok(Tree {
            dev: dev(&st),
            root: cur,
            owner,
            path: so_far,
            levels,
            use_openat2: probe.is_ok(),
        })
    }

    /// Forces the portable per-component walk instead of `openat2` (tests of the fallback).
    pub fn set_use_openat2(&mut self, on: bool) {
        self.use_openat2 = on;
    }

    /// Whether `openat2` is used.
    pub fn uses_openat2(&self) -> bool {
        self.use_openat2
    }

    /// The root's path as checked (absolute, no `.` components, no trailing slash).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cache's `levels=`.
    pub fn levels(&self) -> &Levels {
        &self.levels
    }

    /// The cache owner's uid.
    pub fn owner(&self) -> u32 {
        self.owner
    }

    fn check_dir(&self, st: &Stat, rel: &str) -> Result<(), Reason> {
        if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(format!("{rel}: {}, not a directory", type_word(st)));
        }
        if st.st_uid != self.owner {
            return Err(format!(
                "{rel}: directory owned by uid {}, not the cache owner",
                st.st_uid
            ));
        }
        if st.st_mode & 0o022 != 0 {
            return Err(format!("{rel}: directory writable by group or others"));
        }
        if dev(st) != self.dev {
            return Err(format!("{rel}: another filesystem (not crossed)"));
        }
        Ok(())
    }

    /// The root itself, as a directory handle.
    pub fn root_dir(&self) -> Result<DirHandle, Reason> {
        let fd = rustix::fs::openat(&self.root, ".", DIR_FLAGS, Mode::empty())
            .map_err(|e| format!(".: {}", std::io::Error::from(e)))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| format!(".: {}", std::io::Error::from(e)))?;
        Ok(DirHandle {
            fd,
            rel: String::new(),
            mtime_ns: mtime_ns(&st),
        })
    }

    /// Opens the directory `rel` (components separated by `/`, each a plain name) beneath the
    /// root. `Ok(None)` when it does not exist.
    pub fn open_dir(&self, rel: &str) -> Result<Option<DirHandle>, Reason> {
        if rel.is_empty() {
            return self.root_dir().map(Some);
        }
        if rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.contains('\0'))
        {
            return Err(format!("{rel}: not a plain relative path"));
        }
        let fd = if self.use_openat2 {
            match rustix::fs::openat2(
                &self.root,
                rel,
                DIR_FLAGS,
                Mode::empty(),
                ResolveFlags::BENEATH
                    | ResolveFlags::NO_SYMLINKS
                    | ResolveFlags::NO_XDEV
                    | ResolveFlags::NO_MAGICLINKS,
            ) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => return Ok(None),
                Err(Errno::LOOP) => {
                    return Err(format!("{rel}: symlink in the path (not followed)"))
                }
                Err(Errno::XDEV) => {
                    return Err(format!("{rel}: crosses a mount point (not crossed)"))
                }
                Err(Errno::NOTDIR) => return Err(format!("{rel}: not a directory")),
                Err(e) => return Err(format!("{rel}: {}", std::io::Error::from(e))),
            }
        } else {
            let mut cur: Option<OwnedFd> = None;
            for comp in rel.split('/') {
                let parent = match &cur {
                    Some(fd) => fd.as_fd(),
                    None => self.root.as_fd(),
                };
                let next = match rustix::fs::openat(parent, comp, DIR_FLAGS, Mode::empty()) {
                    Ok(fd) => fd,
                    Err(Errno::NOENT) => return Ok(None),
                    Err(Errno::LOOP) => {
                        return Err(format!("{rel}: symlink in the path (not followed)"))
                    }
                    Err(Errno::NOTDIR) => return Err(format!("{rel}: not a directory")),
                    Err(e) => return Err(format!("{rel}: {}", std::io::Error::from(e))),
                };
                let st = rustix::fs::fstat(&next)
                    .map_err(|e| format!("{rel}: {}", std::io::Error::from(e)))?;
                self.check_dir(&st, rel)?;
                cur = Some(next);
            }
            match cur {
                Some(fd) => fd,
                None => return Ok(None),
            }
        };
        let st =
            rustix::fs::fstat(&fd).map_err(|e| format!("{rel}: {}", std::io::Error::from(e)))?;
        self.check_dir(&st, rel)?;
        Ok(Some(DirHandle {
            fd,
            rel: rel.to_owned(),
            mtime_ns: mtime_ns(&st),
        }))
    }

    /// Opens the child directory `name` of `dir` (one component, never a symlink).
    pub fn open_child(&self, dir: &DirHandle, name: &str) -> Result<Option<DirHandle>, Reason> {
        let rel = if dir.rel.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", dir.rel)
        };
        let fd = match rustix::fs::openat(&dir.fd, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => return Err(format!("{rel}: symlink (not followed)")),
            Err(Errno::NOTDIR) => return Err(format!("{rel}: not a directory")),
            Err(e) => return Err(format!("{rel}: {}", std::io::Error::from(e))),
        };
        let st =
            rustix::fs::fstat(&fd).map_err(|e| format!("{rel}: {}", std::io::Error::from(e)))?;
        self.check_dir(&st, &rel)?;
        Ok(Some(DirHandle {
            fd,
            rel,
            mtime_ns: mtime_ns(&st),
        }))
    }

    /// The names in `dir` (not `.`/`..`), with the type readdir reports.
    pub fn list(&self, dir: &DirHandle) -> Result<Vec<(String, FileType)>, Reason> {
        let mut out = Vec::new();
        let d = rustix::fs::Dir::read_from(&dir.fd)
            .map_err(|e| format!("{}: {}", shown(&dir.rel), std::io::Error::from(e)))?;
        for ent in d {
            let ent =
                ent.map_err(|e| format!("{}: {}", shown(&dir.rel), std::io::Error::from(e)))?;
            let name: &CStr = ent.file_name();
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            // Names that are not UTF-8 are never nginx's; keep them out of the way.
            if let Ok(s) = std::str::from_utf8(bytes) {
                out.push((s.to_owned(), ent.file_type()));
            }
        }
        Ok(out)
    }

    /// Checks the name `name` in `dir` without opening it: regular, the owner's, one link.
    pub fn check_file(&self, dir: &DirHandle, name: &str) -> Result<Option<()>, Reason> {
        let rel = join(&dir.rel, name);
        let st = match rustix::fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(format!("{rel}: {}", std::io::Error::from(e))),
        };
        self.check_file_stat(&st, &rel).map(Some)
    }

    fn check_file_stat(&self, st: &Stat, rel: &str) -> Result<(), Reason> {
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(format!("{rel}: {} (left alone)", type_word(st)));
        }
        if st.st_uid != self.owner {
            return Err(format!(
                "{rel}: owned by uid {}, not the cache owner (left alone)",
                st.st_uid
            ));
        }
        if nlink(st) != 1 {
            return Err(format!("{rel}: has {} hard links (left alone)", nlink(st)));
        }
        if dev(st) != self.dev {
            return Err(format!("{rel}: another filesystem (left alone)"));
        }
        Ok(())
    }

    /// Looks at `dir/name`: missing, unsafe, or a cache entry with its key read at the header's
    /// fixed offset.
    pub fn inspect(&self, dir: &DirHandle, name: &str) -> Found {
        match self.check_file(dir, name) {
            Ok(None) => return Found::Missing,
            Err(r) => return Found::Unsafe(r),
            Ok(Some(())) => {}
        }
        let rel = join(&dir.rel, name);
        let fd = match rustix::fs::openat(&dir.fd, name, FILE_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Found::Missing,
            Err(e) => return Found::Unsafe(format!("{rel}: {}", std::io::Error::from(e))),
        };
        // The name may have changed between the fstatat and the open: check what was opened.
        match rustix::fs::fstat(&fd) {
            Ok(st) => {
                if let Err(r) = self.check_file_stat(&st, &rel) {
                    return Found::Unsafe(r);
                }
            }
            Err(e) => return Found::Unsafe(format!("{rel}: {}", std::io::Error::from(e))),
        }
        match nginx_cache::read_entry(&File::from(fd)) {
            Ok(e) => Found::Entry(e),
            Err(e) => Found::Unparsed(format!("{rel}: {e}")),
        }
    }

    /// Removes the file `dir/name` (never a directory; `unlinkat` does not follow links).
    /// `Ok(false)` when it was already gone.
    pub fn unlink(&self, dir: &DirHandle, name: &str) -> Result<bool, Reason> {
        match rustix::fs::unlinkat(&dir.fd, name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(format!(
                "{}: {}",
                join(&dir.rel, name),
                std::io::Error::from(e)
            )),
        }
    }

    /// Visits every leaf directory of the level tree (the root itself without levels), in
    /// name order. Only names that are hex of the level's width are descended into, so
    /// `*_temp` directories and anything else nginx did not create are never entered.
    /// Problems (symlinks, foreign directories) go to `problems` and the walk goes on.
    pub fn for_each_leaf(
        &self,
        problems: &mut Vec<Reason>,
        f: &mut dyn FnMut(&DirHandle) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let root = self.root_dir().map_err(Error::Failed)?;
        self.walk(&root, 0, None, problems, f)
    }

    /// Like [`Tree::for_each_leaf`], but leaf directories for which `unchanged(rel, mtime_ns)`
    /// holds are only `fstatat`ed (checked, not opened): one system call each, which is what
    /// keeps an index refresh of 4,096 leaves within a few milliseconds.
    pub fn for_each_changed_leaf(
        &self,
        unchanged: Unchanged<'_>,
        problems: &mut Vec<Reason>,
        f: &mut dyn FnMut(&DirHandle) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let root = self.root_dir().map_err(Error::Failed)?;
        if self.levels.depth() == 0 {
            if unchanged("", root.mtime_ns) {
                return Ok(());
            }
            return f(&root);
        }
        self.walk(&root, 0, Some(unchanged), problems, f)
    }

    fn walk(
        &self,
        dir: &DirHandle,
        depth: usize,
        unchanged: Option<Unchanged<'_>>,
        problems: &mut Vec<Reason>,
        f: &mut dyn FnMut(&DirHandle) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let widths = self.levels.widths();
        if depth == widths.len() {
            return f(dir);
        }
        let mut names = match self.list(dir) {
            Ok(n) => n,
            Err(r) => {
                problems.push(r);
                return Ok(());
            }
        };
        names.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, _) in names {
            if name.len() != widths[depth]
                || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                continue;
            }
            if let Some(unchanged) = unchanged.filter(|_| depth + 1 == widths.len()) {
                let rel = join(&dir.rel, &name);
                match rustix::fs::statat(&dir.fd, name.as_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) => {
                        if let Err(r) = self.check_dir(&st, &rel) {
                            problems.push(r);
                            continue;
                        }
                        if unchanged(&rel, mtime_ns(&st)) {
                            continue;
                        }
                    }
                    Err(Errno::NOENT) => continue,
                    Err(e) => {
                        problems.push(format!("{rel}: {}", std::io::Error::from(e)));
                        continue;
                    }
                }
            }
            match self.open_child(dir, &name) {
                Ok(Some(child)) => self.walk(&child, depth + 1, unchanged, problems, f)?,
                Ok(None) => {}
                Err(r) => problems.push(r),
            }
        }
        Ok(())
    }

    /// The cache-file names of a leaf directory that belong there under `levels=` (a name whose
    /// last characters do not match its directories is not where nginx puts it).
    pub fn entry_names(&self, dir: &DirHandle) -> Result<Vec<String>, Reason> {
        let mut out = self.entry_names_unsorted(dir)?;
        out.sort();
        Ok(out)
    }

    /// [`Tree::entry_names`] in directory order (purge-all: unlinking in the order the
    /// directory lists its entries is what `rm -rf` does, and the cheapest for the filesystem).
    pub fn entry_names_unsorted(&self, dir: &DirHandle) -> Result<Vec<String>, Reason> {
        let want: Vec<&str> = if dir.rel.is_empty() {
            Vec::new()
        } else {
            dir.rel.split('/').collect()
        };
        let out: Vec<String> = self
            .list(dir)?
            .into_iter()
            .filter(|(n, _)| is_cache_file_name(n.as_bytes()) && self.levels.dirs(n) == want)
            .map(|(n, _)| n)
            .collect();
        Ok(out)
    }
}

fn shown(rel: &str) -> &str {
    if rel.is_empty() {
        "."
    } else {
        rel
    }
}

/// `dir/name` relative to the root.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Names as a set (for index refreshes).
pub fn name_set(v: Vec<String>) -> HashSet<String> {
    v.into_iter().collect()
}
