//! Setuid-root mode: choose the job identity, then hand over to the drop pipeline.
//!
//! This file is the single call site of the confinement interface (`crate::confine`), inside
//! `RealSteps`; the order of the calls is fixed by [`crate::drop::run`].
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Component, Path, PathBuf};

use crate::app::{apply_safe_cwd, Job};
use crate::config::{self, Config};
use crate::confine::{self, Detach, Placement, SeccompFilter};
use crate::drop::{self, Exec, Steps, Target};
use crate::env::{self, Snapshot};
use crate::error::Error;
use crate::policy::Tool;
use crate::sys::{self, Gid, Uid};
use crate::{jobs, msg, resolve, shim, tmpdir, users};

/// Runs the job in setuid mode; returns only on failure.
pub fn run(job: Job, snap: &Snapshot) -> Error {
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
    let caller = Target {
        uid: sys::getuid(),
        gid: sys::getgid(),
    };
    let target = match choose_target(&job, &cfg, caller) {
        Ok(t) => t,
        Err(e) => return e,
    };
    // Never run a tool as root, whatever the configuration or the caller says.
    if target.uid.0 == 0 {
        return Error::line(msg::fatal_root());
    }
    let pid = sys::getpid();
    let Some(start) = jobs::start_time("self") else {
        return Error::line(msg::job_record_failed(&std::io::Error::other(
            "cannot read /proc/self/stat",
        )));
    };
    let nohup = job.prelude.nohup;
    let mut steps = RealSteps {
        job,
        cfg,
        snap: snap.clone(),
        pid,
        start,
        caller,
        target,
        filter: None,
        stale_tmp: Vec::new(),
    };
    drop::run(&mut sys::Linux, &mut steps, target, nohup)
}

/// The identity the job runs as: the configured job user, or for rg the configured owner of
/// the cache root the path lies under (never the owner of a caller-chosen path).
fn choose_target(job: &Job, cfg: &Config, caller: Target) -> Result<Target, Error> {
    if job.prelude.tool == Tool::Rg {
        let path = job.checked.rg_path.clone().unwrap_or_default();
        return rg_target(&path, cfg, caller);
    }
    match users::by_name(&cfg.job_user) {
        Some(a) => Ok(Target {
            uid: Uid(a.uid),
            gid: Gid(a.gid),
        }),
        None => {
            msg::diag(&msg::job_user_missing(&cfg.job_user));
            Ok(caller)
        }
    }
}

/// Lexically normalises an absolute path; `None` if it has `..` (never resolved lexically).
fn normalise(p: &Path) -> Option<PathBuf> {
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

fn rg_target(path: &OsStr, cfg: &Config, caller: Target) -> Result<Target, Error> {
    let Some(norm) = normalise(Path::new(path)) else {
        return Err(Error::line(msg::rg_refusing()));
    };
    // Only a lexical match against the root-owned configuration decides whether anything is
    // probed as root at all: paths outside the cache roots run as the caller, unprobed.
    let Some(root) = cfg.cache_roots.iter().find(|r| norm.starts_with(&r.path)) else {
        msg::diag(&msg::rg_not_cache_root(path, caller.uid.0));
        return Ok(caller);
    };
    // No symlink at any level (a trailing `/` or `/.` no longer hides one, spec §7.1-A).
    match resolve::walk(&norm, false, false) {
        Ok(w) if w.stat.is_dir() => {}
        _ => return Err(Error::line(msg::rg_bad_path(path))),
    }
    let Some(owner) = users::by_name(&root.owner) else {
        return Err(Error::line(msg::user_not_in_passwd(&root.owner)));
    };
    if owner.uid == 0 {
        return Err(Error::line(msg::rg_refusing()));
    }
    if owner.uid == caller.uid.0 {
        msg::diag(&msg::rg_owner_is_caller(owner.uid));
        return Ok(caller);
    }
    msg::diag(&msg::rg_dropping(path, &owner.name, owner.uid));
    Ok(Target {
        uid: Uid(owner.uid),
        gid: Gid(owner.gid),
    })
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
    /// Private `-P` directories of finished jobs, removed after the drop.
    stale_tmp: Vec<String>,
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

    fn prepare_as_root(&mut self, target: Target) {
        if self.job.checked.tmp_slots.is_empty() {
            return;
        }
        self.stale_tmp = tmpdir::stale_job_dirs();
        match tmpdir::prepare(self.pid, self.start, target.uid, target.gid) {
            Ok(dir) => {
                msg::diag(&msg::rewriting_p(OsStr::new("/tmp"), &dir));
                self.job.checked.rewrite_tmp(OsStr::new(&dir));
            }
            Err(warning) => msg::diag(&warning),
        }
    }

    fn drop_bounding_set(&mut self) -> Result<(), String> {
        confine::drop_bounding_set()
    }

    fn verify_no_capabilities(&mut self) -> Result<(), String> {
        confine::verify_no_capabilities()
    }

    fn finalize(&mut self, placement: &Placement) -> Result<Exec, String> {
        tmpdir::remove_stale(&self.stale_tmp);
        apply_safe_cwd(self.snap.safe_cwd);
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
