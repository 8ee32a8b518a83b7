//! Setuid-root mode: choose the job identity, then hand over to the drop pipeline.
//!
//! This file is the single call site of the confinement interface (`crate::confine`), inside
//! `RealSteps`; the order of the calls is fixed by [`crate::drop::run`].
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use crate::app::Job;
use crate::config::{self, CacheRoot, Config};
use crate::confine::{self, Detach, Placement, SeccompFilter};
use crate::drop::{self, Exec, Steps, Target};
use crate::env::{self, Snapshot};
use crate::error::Error;
use crate::policy::{PurgeRequest, Tool};
use crate::sys::{self, Gid, Uid};
use crate::{indexdir, jobs, msg, resolve, shim, tmpdir, users};

/// The caller as the configuration sees it: ids, login name and group names (from our own
/// `/etc/passwd` and `/etc/group` readers, never NSS).
#[derive(Debug, Clone)]
pub struct Caller {
    /// Real uid and gid.
    pub ids: Target,
    /// Login name (empty when the uid has no passwd entry: such a caller matches no `allow=`
    /// and no `caller_job_user`).
    pub name: String,
    /// Group names (primary and member-of).
    pub groups: Vec<String>,
}

impl Caller {
    fn current() -> Caller {
        let ids = Target {
            uid: sys::getuid(),
            gid: sys::getgid(),
        };
        match users::by_uid(ids.uid.0) {
            Some(a) => Caller {
                ids,
                groups: users::groups_of(&a),
                name: a.name,
            },
            None => Caller {
                ids,
                name: String::new(),
                groups: Vec::new(),
            },
        }
    }

    /// Whether this caller may use a cache root (issue 15 class 8): only callers named by
    /// its `allow=`; root may use every root.
    pub fn may_use(&self, root: &CacheRoot) -> bool {
        self.ids.uid.0 == 0 || (!self.name.is_empty() && root.allows(&self.name, &self.groups))
    }
}

/// Where the job starts (its cwd). Setuid jobs never start in the caller's directory (issue 15
/// class 3): a relative path the tool writes would follow whatever the caller planted there.
#[derive(Debug)]
enum Workdir {
    /// The job's own fresh private directory, created as root in `prepare_as_root`.
    Private,
    /// A directory of a configured cache root, checked and opened as root before the drop
    /// (rg and cache-purge get relative paths to it, so nothing is resolved twice).
    CacheRoot {
        /// The root's configured path (diagnostics, and the Landlock rule).
        root: PathBuf,
        /// The checked directory.
        dir: OwnedFd,
    },
}

/// Who the job runs as and where it starts.
#[derive(Debug)]
struct Plan {
    target: Target,
    workdir: Workdir,
    /// cache-purge's key index directory, prepared as root (see [`indexdir`]).
    index_dir: Option<PathBuf>,
}

/// Runs the job in setuid mode; returns only on failure.
pub fn run(mut job: Job, snap: &Snapshot) -> Error {
    // A refused (unsafe) file gives the defaults and a warning; a trusted file that does not
    // parse is fatal, since guessing could loosen a limit the administrator set.
    let cfg = match config::load() {
        Ok(loaded) => {
            if let Some(w) = &loaded.warning {
                msg::diag(&msg::config_warning(w));
            }
            loaded.config
        }
        Err(e) => return Error::line(msg::confine_failed("configuration", &e)),
    };
    let caller = Caller::current();
    let plan = match plan(&mut job, &cfg, &caller) {
        Ok(p) => p,
        Err(e) => return e,
    };
    // Never run a tool as root, whatever the configuration or the caller says.
    if plan.target.uid.0 == 0 {
        return Error::line(msg::fatal_root());
    }
    if let Err(e) = hand_over_input_files(&mut job, caller.ids) {
        return e;
    }
    let pid = sys::getpid();
    let Some(start) = jobs::start_time("self") else {
        return Error::line(msg::job_record_failed(&std::io::Error::other(
            "cannot read /proc/self/stat",
        )));
    };
    let nohup = job.prelude.nohup;
    let target = plan.target;
    let mut steps = RealSteps {
        job,
        cfg,
        snap: snap.clone(),
        pid,
        start,
        caller: caller.ids,
        target,
        filter: None,
        stale_tmp: Vec::new(),
        workdir: plan.workdir,
        index_dir: plan.index_dir,
        job_dir: None,
        landlock: None,
    };
    drop::run(&mut sys::Linux, &mut steps, target, nohup)
}

fn plan(job: &mut Job, cfg: &Config, caller: &Caller) -> Result<Plan, Error> {
    match job.prelude.tool {
        Tool::Rg => rg_plan(job, cfg, caller),
        Tool::CachePurge
            if job
                .checked
                .purge
                .as_ref()
                .is_some_and(PurgeRequest::touches_cache) =>
        {
            purge_plan(job, cfg, caller)
        }
        _ => job_user_plan(cfg, caller),
    }
}

/// Fetch tools: the caller's `caller_job_user`, else the configured `job_user` (issue 15
/// class 7: tenants can be kept apart; `nobody` stays the default, as NPP expects).
fn job_user_plan(cfg: &Config, caller: &Caller) -> Result<Plan, Error> {
    let mapped =
        !caller.name.is_empty() && cfg.caller_job_users.iter().any(|m| m.caller == caller.name);
    let name = if mapped {
        cfg.job_user_for(&caller.name)
    } else {
        cfg.job_user.as_str()
    };
    let target = match users::by_name(name) {
        Some(a) => {
            if mapped {
                msg::diag(&msg::caller_job_user(&caller.name, &a.name, a.uid));
            }
            Target {
                uid: Uid(a.uid),
                gid: Gid(a.gid),
            }
        }
        // A mapping exists to keep this caller apart from the others: never fall back.
        None if mapped => return Err(Error::line(msg::mapped_job_user_missing(name))),
        None => {
            msg::diag(&msg::job_user_missing(name));
            caller.ids
        }
    };
    Ok(Plan {
        target,
        workdir: Workdir::Private,
        index_dir: None,
    })
}

/// Lexically normalises an absolute path; `None` if it has `..` (never resolved lexically).
fn normalise(p: &Path) -> Option<PathBuf> {
    if !p.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => out.push(n),
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// The owner account of a root, refusing root itself.
fn root_owner(root: &CacheRoot) -> Result<users::Account, Error> {
    let Some(owner) = users::by_name(&root.owner) else {
        return Err(Error::line(msg::user_not_in_passwd(&root.owner)));
    };
    if owner.uid == 0 {
        return Err(Error::line(msg::rg_refusing()));
    }
    Ok(owner)
}

/// The identity for acting on a root: its owner, or the caller when the caller owns it.
fn owner_target(owner: &users::Account, caller: &Caller) -> Target {
    if owner.uid == caller.ids.uid.0 {
        return caller.ids;
    }
    Target {
        uid: Uid(owner.uid),
        gid: Gid(owner.gid),
    }
}

fn rg_plan(job: &mut Job, cfg: &Config, caller: &Caller) -> Result<Plan, Error> {
    let path = job.checked.rg_path.clone().unwrap_or_default();
    let Some(norm) = normalise(Path::new(&path)) else {
        return Err(Error::line(msg::rg_refusing()));
    };
    // Only a lexical match against the root-owned configuration decides whether anything is
    // probed as root at all: paths outside the cache roots run as the caller, unprobed. The
    // most specific root wins when roots nest.
    let Some(root) = cfg
        .cache_roots
        .iter()
        .filter(|r| norm.starts_with(&r.path))
        .max_by_key(|r| r.path.components().count())
    else {
        msg::diag(&msg::rg_not_cache_root(&path, caller.ids.uid.0));
        return Ok(Plan {
            target: caller.ids,
            workdir: Workdir::Private,
            index_dir: None,
        });
    };
    if !caller.may_use(root) {
        return Err(Error::line(msg::root_not_allowed(
            &root.path,
            &caller.name,
            caller.ids.uid.0,
        )));
    }
    let owner = root_owner(root)?;
    let root_fd = resolve::open_cache_root(&root.path, owner.uid)
        .map_err(|why| Error::line(msg::root_refused(&root.path, &why)))?;
    // No symlink at any level below the root either (a trailing `/` or `/.` no longer hides
    // one, spec §7.1-A); the directory reached is the one rg searches.
    let rel = norm.strip_prefix(&root.path).unwrap_or(Path::new(""));
    let Some(dir) = resolve::walk_dir_beneath(&root_fd, rel) else {
        return Err(Error::line(msg::rg_bad_path(&path)));
    };
    let target = owner_target(&owner, caller);
    if target == caller.ids {
        msg::diag(&msg::rg_owner_is_caller(owner.uid));
    } else {
        msg::diag(&msg::rg_dropping(&path, &owner.name, owner.uid));
    }
    if let Some(i) = job.checked.rg_path_index {
        job.checked.args[i] = OsString::from(".");
    }
    msg::diag(&msg::started_in_checked_dir("rg", &path));
    Ok(Plan {
        target,
        workdir: Workdir::CacheRoot {
            root: root.path.clone(),
            dir,
        },
        index_dir: None,
    })
}

/// `safexec cache-purge …` (issue 13): runs as the owner of one of the caller's roots, in the
/// checked root directory, with the root's path, key template and levels.
fn purge_plan(job: &mut Job, cfg: &Config, caller: &Caller) -> Result<Plan, Error> {
    let req = job.checked.purge.clone().unwrap_or_default();
    let allowed: Vec<&CacheRoot> = cfg
        .cache_roots
        .iter()
        .filter(|r| caller.may_use(r))
        .collect();
    if allowed.is_empty() {
        return Err(Error::line(msg::purge_no_root(
            &caller.name,
            caller.ids.uid.0,
        )));
    }
    let root = choose_root(&allowed, &req).map_err(Error::line)?;
    let owner = root_owner(root)?;
    let dir = resolve::open_cache_root(&root.path, owner.uid)
        .map_err(|why| Error::line(msg::root_refused(&root.path, &why)))?;
    let target = owner_target(&owner, caller);
    // The job starts in the checked root and is given `--cache-path .`, cache-purge's form for
    // this handover: it takes the current directory as the root, checks it again by its real
    // path and refuses it unless it is the same directory (device and inode) it was started
    // in, so a swap between our check and its use is caught rather than followed.
    let mut args: Vec<OsString> = vec![
        "--cache-path".into(),
        ".".into(),
        "--cache-key".into(),
        root.key.clone().into(),
        "--levels".into(),
        root.levels.clone().into(),
    ];
    // The key index lives in a directory prepared here, as root, for the job user; when that
    // fails the purge runs without one (it scans where needed) rather than being refused, and
    // `--no-index` keeps cache-purge from trying its default directory.
    let index_dir = match indexdir::prepare(&owner.name, target.uid, target.gid) {
        Ok(d) => {
            msg::diag(&msg::purge_index_dir(&d));
            args.push("--index-dir".into());
            args.push(d.clone().into_os_string());
            Some(d)
        }
        Err(why) => {
            msg::diag(&msg::purge_no_index(&why));
            args.push("--no-index".into());
            None
        }
    };
    args.extend(req.args.iter().cloned());
    job.checked.args = args;
    msg::diag(&msg::purge_root(&root.path, &owner.name, owner.uid));
    Ok(Plan {
        target,
        workdir: Workdir::CacheRoot {
            root: root.path.clone(),
            dir,
        },
        index_dir,
    })
}

/// The host (lower case, without a trailing dot) and port of an `http(s)://` URL.
pub fn url_authority(url: &[u8]) -> Option<(String, u16)> {
    let lower = url.to_ascii_lowercase();
    let (rest, default_port) = if let Some(r) = lower.strip_prefix(b"https://") {
        (r, 443)
    } else if let Some(r) = lower.strip_prefix(b"http://") {
        (r, 80)
    } else {
        return None;
    };
    let end = rest
        .iter()
        .position(|&c| matches!(c, b'/' | b'?' | b'#'))
        .unwrap_or(rest.len());
    let auth = &rest[..end];
    let auth = match auth.iter().rposition(|&c| c == b'@') {
        Some(i) => &auth[i + 1..],
        None => auth,
    };
    let (host, port) = if auth.first() == Some(&b'[') {
        let close = auth.iter().position(|&c| c == b']')?;
        (&auth[..=close], &auth[close + 1..])
    } else {
        match auth.iter().rposition(|&c| c == b':') {
            Some(i) => (&auth[..i], &auth[i..]),
            None => (auth, &auth[auth.len()..]),
        }
    };
    let port = match port {
        [] => default_port,
        [b':', digits @ ..] if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            std::str::from_utf8(digits).ok()?.parse().ok()?
        }
        _ => return None,
    };
    let host = std::str::from_utf8(host).ok()?.trim_end_matches('.');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port))
}

/// Chooses the cache root of a purge among the caller's allowed roots: the one `--cache-path`
/// names (exactly, after lexical normalisation), else the only one, else the one whose `url=`
/// lists the host (and port) of every URL. `Err` is the refusal line.
pub fn choose_root<'a>(
    allowed: &[&'a CacheRoot],
    req: &PurgeRequest,
) -> Result<&'a CacheRoot, String> {
    if let Some(p) = &req.cache_path {
        let norm = normalise(Path::new(p));
        return allowed
            .iter()
            .find(|r| norm.as_deref() == Some(r.path.as_path()))
            .copied()
            .ok_or_else(|| msg::purge_path_not_allowed(p));
    }
    if let [only] = allowed {
        return Ok(only);
    }
    if req.urls.is_empty() {
        return Err(msg::purge_several_roots());
    }
    let mut chosen: Option<&CacheRoot> = None;
    for url in &req.urls {
        let Some((host, port)) = url_authority(url.as_bytes()) else {
            return Err(msg::purge_no_root_for_url(url));
        };
        let matches: Vec<&CacheRoot> = allowed
            .iter()
            .copied()
            .filter(|r| {
                r.urls
                    .iter()
                    .any(|u| url_authority(u.as_bytes()) == Some((host.clone(), port)))
            })
            .collect();
        let [root] = matches[..] else {
            return Err(msg::purge_no_root_for_url(url));
        };
        match chosen {
            Some(c) if c.path != root.path => return Err(msg::purge_urls_span_roots()),
            _ => chosen = Some(root),
        }
    }
    chosen.ok_or_else(msg::purge_several_roots)
}

/// Issue 15 class 1: a file the tool would open as the job user (cache-preload
/// `--url-list FILE`) is opened here, with the caller's file-system identity, and handed to the
/// tool as its stdin (the value becomes `-`). What the caller cannot read, the job never gets.
fn hand_over_input_files(job: &mut Job, caller: Target) -> Result<(), Error> {
    let slot = match &job.checked.file_slots[..] {
        [] => return Ok(()),
        [one] => one.clone(),
        [_, second, ..] => {
            return Err(Error::line(msg::one_input_file(
                job.prelude.tool.name(),
                &second.value,
            )))
        }
    };
    let file = open_as(caller, Path::new(&slot.value)).map_err(|e| {
        Error::line(msg::input_file_refused(
            job.prelude.tool.name(),
            &slot.value,
            &e,
        ))
    })?;
    // dup2 clears FD_CLOEXEC on fd 0, so the tool inherits it; the original closes on drop.
    nix::unistd::dup2(file.as_raw_fd(), 0)
        .map_err(|e| Error::line(msg::drop_step_failed("dup2", &e.to_string())))?;
    let mut v = slot.prefix.clone();
    v.push("-");
    job.checked.args[slot.index] = v;
    msg::diag(&msg::input_file_handed(&slot.value));
    Ok(())
}

/// Opens `path` for reading with the caller's file-system ids (see [`with_fs_ids`]).
fn open_as(caller: Target, path: &Path) -> std::io::Result<std::fs::File> {
    with_fs_ids(caller, || {
        std::fs::File::options()
            .read(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
    })?
}

/// Runs `f` with `ids` as the file-system uid and gid (the supplementary groups are still the
/// caller's until the drop), then restores the previous ones and verifies that it did: a
/// failure to restore is an error, never a silent change of what root-side code can open.
fn with_fs_ids<R>(ids: Target, f: impl FnOnce() -> R) -> std::io::Result<R> {
    let prev = sys::set_fs_ids(ids.uid, ids.gid);
    if sys::fs_ids() != (ids.uid, ids.gid) {
        sys::set_fs_ids(prev.0, prev.1);
        return Err(std::io::Error::other(
            "cannot take the job's file-system ids",
        ));
    }
    let r = f();
    sys::set_fs_ids(prev.0, prev.1);
    if sys::fs_ids() != prev {
        return Err(std::io::Error::other("cannot restore the file-system ids"));
    }
    Ok(r)
}

/// The real pipeline steps.
struct RealSteps {
    job: Job,
    cfg: Config,
    snap: Snapshot,
    pid: u32,
    start: u64,
    caller: Target,
    target: Target,
    filter: Option<SeccompFilter>,
    /// Private directories of finished jobs, emptied after the drop.
    stale_tmp: Vec<String>,
    /// Where the job starts.
    workdir: Workdir,
    /// cache-purge's key index directory (written by the job).
    index_dir: Option<PathBuf>,
    /// The private directory, once created.
    job_dir: Option<tmpdir::JobDir>,
    /// The Landlock ruleset between `prepare_landlock` and `apply_landlock`.
    landlock: Option<confine::LandlockRuleset>,
}

impl Steps for RealSteps {
    fn compile_seccomp(&mut self) -> Result<(), String> {
        self.filter = Some(confine::compile_seccomp()?);
        Ok(())
    }

    fn write_job_record(&mut self) -> Result<(), String> {
        let rec = jobs::Record {
            pid: self.pid,
            start: self.start,
            caller: self.caller.uid.0,
            user: self.target.uid.0,
        };
        jobs::write(&rec).map_err(|e| msg::job_record_failed(&e))
    }

    fn place_in_cgroup(&mut self) -> Result<Placement, String> {
        // SAFEXEC_DETACH may only make placement stricter (`cgv2`); `off` is not honoured.
        let detach = Detach::from_env_value(self.snap.detach.as_deref());
        let placement = confine::place_in_cgroup(&self.cfg, self.pid, detach)?;
        for note in &placement.notes {
            msg::diag(&msg::info(note));
        }
        if placement.is_rlimits_only() {
            msg::diag(&msg::info("falling back to RLIMITs + nice/ionice"));
        }
        Ok(placement)
    }

    fn lower_rlimits(&mut self, placement: &Placement) -> Result<(), String> {
        confine::lower_rlimits(&self.cfg, placement)
    }

    fn prepare_as_root(&mut self, target: Target) -> Result<(), String> {
        if let Workdir::CacheRoot { .. } = self.workdir {
            // Checked and opened while planning; rg and cache-purge take no `-P`.
            return Ok(());
        }
        self.stale_tmp = tmpdir::stale_job_dirs();
        let dir = tmpdir::prepare(self.pid, self.start, target.uid, target.gid)
            .map_err(|why| msg::job_dir_failed(&why))?;
        if !self.job.checked.tmp_slots.is_empty() {
            msg::diag(&msg::rewriting_p(OsStr::new("/tmp"), &dir.path));
            self.job.checked.rewrite_tmp(OsStr::new(&dir.path));
        }
        self.job_dir = Some(dir);
        Ok(())
    }

    fn prepare_landlock(&mut self) -> Result<(), String> {
        let tool = self.job.prelude.tool;
        // What the job works on: its private directory, or the cache root it was checked into.
        // rg outside any cache root runs as the caller on the caller's own path, so that path
        // is its "root"; the ruleset is built with the job's file-system ids, so it can only
        // anchor what the job itself could open (and says nothing about other paths).
        let rg_own_path = match (&self.workdir, tool) {
            (Workdir::Private, Tool::Rg) => self.job.checked.rg_path.as_deref().map(Path::new),
            _ => None,
        };
        let cache_root = match &self.workdir {
            Workdir::CacheRoot { root, .. } => Some(root.as_path()),
            Workdir::Private => rg_own_path,
        };
        let access = confine::JobAccess {
            tool,
            job_dir: self.job_dir.as_ref().map(|d| Path::new(d.path.as_str())),
            cache_root,
            index_dir: self.index_dir.as_deref(),
            tool_path: &self.job.pinned.canonical,
            // The job's own /proc entries: `/proc/self` is resolved now, in this process, whose
            // pid the tool keeps (exec in place), so no other process's entries are reachable.
            // In setuid mode only the installed shim can be preloaded (shim::decide).
            extra_read: match tool {
                Tool::Wget | Tool::Curl => {
                    vec![Path::new("/proc/self"), Path::new(shim::DEFAULT_SO)]
                }
                _ => vec![Path::new("/proc/self")],
            },
            tcp_ports: confine::fetch_ports(&self.job.checked.args),
        };
        let ruleset = with_fs_ids(self.target, || confine::prepare_landlock(&access))
            .map_err(|e| e.to_string())??;
        self.landlock = Some(ruleset);
        Ok(())
    }

    fn apply_landlock(&mut self) -> Result<(), String> {
        let ruleset = self
            .landlock
            .take()
            .ok_or_else(|| "the landlock ruleset was not built".to_string())?;
        let report = confine::apply_landlock(ruleset)?;
        for line in &report.lines {
            msg::diag(&msg::info(line));
        }
        Ok(())
    }

    fn drop_bounding_set(&mut self) -> Result<(), String> {
        confine::drop_bounding_set()
    }

    fn verify_no_capabilities(&mut self) -> Result<(), String> {
        confine::verify_no_capabilities()
    }

    fn finalize(&mut self, placement: &Placement) -> Result<Exec, String> {
        tmpdir::remove_stale(&self.stale_tmp);
        // The cwd comes from a descriptor opened as root, entered with the job's own rights;
        // SAFEXEC_SAFE_CWD no longer matters in setuid mode (issue 15 class 3).
        let cwd_fd = match (&self.workdir, &self.job_dir) {
            (Workdir::CacheRoot { dir, .. }, _) => dir.as_fd(),
            (Workdir::Private, Some(d)) => d.fd.as_fd(),
            (Workdir::Private, None) => return Err(msg::job_dir_failed("not created")),
        };
        sys::fchdir(cwd_fd).map_err(|e| msg::drop_step_failed("fchdir", &e.to_string()))?;
        if self.job.prelude.nice {
            // Raising the nice value needs no privilege; a failure leaves it unchanged.
            let _ = sys::nice(10);
        }
        let decision = shim::decide(&self.snap, self.job.prelude.tool)?;
        for l in &decision.lines {
            msg::diag(l);
        }
        let mut envp = env::tool_env();
        envp.extend(decision.env);
        let cwd = std::env::current_dir()
            .map(|p| msg::esc(p.as_os_str()))
            .unwrap_or_else(|_| "(unavailable)".to_string());
        msg::diag(&msg::summary_user(
            sys::geteuid().0,
            sys::getegid().0,
            sys::getuid().0,
            sys::getgid().0,
            &cwd,
            &self.job.pinned.path.display().to_string(),
        ));
        msg::diag(&msg::summary_nnp(sys::no_new_privs()));
        msg::diag(&msg::summary_cgroup(&placement.summary()));
        Ok(Exec {
            argv: self.job.argv(),
            envp,
        })
    }

    fn install_seccomp(&mut self) -> Result<(), String> {
        match &self.filter {
            Some(f) => confine::install_seccomp(f),
            None => Err("the seccomp filter was not compiled".to_string()),
        }
    }

    fn tool_fd(&self) -> RawFd {
        self.job.pinned.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(path: &str, urls: &[&str]) -> CacheRoot {
        let mut r = CacheRoot::new(path, "www-data");
        r.urls = urls.iter().map(|u| u.to_string()).collect();
        r
    }

    fn req(cache_path: Option<&str>, urls: &[&str], all: bool) -> PurgeRequest {
        PurgeRequest {
            cache_path: cache_path.map(OsString::from),
            urls: urls.iter().map(OsString::from).collect(),
            all,
            args: Vec::new(),
        }
    }

    #[test]
    fn url_authority_reads_host_and_port() {
        let a = |u: &str| url_authority(u.as_bytes());
        assert_eq!(
            a("https://Example.COM/x"),
            Some(("example.com".into(), 443))
        );
        assert_eq!(a("http://example.com."), Some(("example.com".into(), 80)));
        assert_eq!(a("http://u:p@h:8080?q"), Some(("h".into(), 8080)));
        assert_eq!(a("http://[::1]:81/"), Some(("[::1]".into(), 81)));
        assert_eq!(a("http://[::1]/"), Some(("[::1]".into(), 80)));
        for bad in [
            "ftp://x/",
            "http://",
            "http://:80/",
            "http://h:/",
            "http://h:99999/",
            "http://h:8a/",
            "http://[::1/",
        ] {
            assert_eq!(a(bad), None, "{bad}");
        }
    }

    #[test]
    fn purge_root_is_chosen_by_cache_path_then_by_host() {
        let a = root(
            "/var/cache/a",
            &["https://a.example", "https://www.a.example"],
        );
        let b = root("/var/cache/b", &["http://b.example:8080"]);
        let both = [&a, &b];
        let pick = |r: PurgeRequest| choose_root(&both, &r).map(|r| r.path.clone());
        assert_eq!(
            pick(req(Some("/var/cache/b/"), &[], true)),
            Ok("/var/cache/b".into())
        );
        // Not one of the caller's roots, or a path that only looks like one.
        assert!(pick(req(Some("/var/cache/c"), &[], true)).is_err());
        assert!(pick(req(Some("/var/cache/a/../b"), &[], true)).is_err());
        assert!(pick(req(Some("/var/cache"), &[], true)).is_err());
        assert_eq!(
            pick(req(None, &["https://WWW.a.example/p?q=1"], false)),
            Ok("/var/cache/a".into())
        );
        assert_eq!(
            pick(req(None, &["http://b.example:8080/x"], false)),
            Ok("/var/cache/b".into())
        );
        // Wrong port, unknown host, URLs of two roots, --all without a path: refused.
        assert!(pick(req(None, &["http://b.example/x"], false)).is_err());
        assert!(pick(req(None, &["https://c.example/"], false)).is_err());
        assert!(pick(req(
            None,
            &["https://a.example/", "http://b.example:8080/"],
            false
        ))
        .is_err());
        assert!(pick(req(None, &[], true)).is_err());
        // One root: no choice to make.
        assert_eq!(
            choose_root(&[&b], &req(None, &["https://other.example/"], false))
                .map(|r| r.path.clone()),
            Ok("/var/cache/b".into())
        );
        assert!(choose_root(&[&b], &req(Some("/var/cache/a"), &[], true)).is_err());
    }

    #[test]
    fn allow_binds_callers_and_root_uses_every_root() {
        let mut r = CacheRoot::new("/c", "www-data");
        r.allow = vec![
            config::Principal::User("site1".into()),
            config::Principal::Group("admins".into()),
        ];
        let c = |uid: u32, name: &str, groups: &[&str]| Caller {
            ids: Target {
                uid: Uid(uid),
                gid: Gid(uid),
            },
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        assert!(c(1001, "site1", &[]).may_use(&r));
        assert!(c(1003, "bob", &["admins"]).may_use(&r));
        assert!(!c(1002, "site2", &["site2"]).may_use(&r));
        assert!(!c(1004, "", &["admins"]).may_use(&r));
        assert!(c(0, "root", &[]).may_use(&r));
        assert!(!c(1001, "site1", &[]).may_use(&CacheRoot::new("/d", "www-data")));
    }
}
