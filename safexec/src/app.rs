//! The program: entry hardening, dispatch, run mode, pass-through, and the one place where
//! errors are printed.
#![forbid(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

use crate::cli::{self, Action};
use crate::env::{self, SafeCwd, Snapshot};
use crate::error::{Error, Result};
use crate::policy::{self, Checked};
use crate::prelude::{self, Prelude};
use crate::resolve::{self, Pinned};
use crate::sys::{self, Sys};
use crate::{hardened, kill, msg};

/// Runs safexec with the process's argv and environment; returns the exit code (only reached
/// when no tool was executed).
pub fn main() -> i32 {
    // A panic must not print caller-influenced state or read RUST_BACKTRACE; it aborts anyway
    // (panic = "abort").
    std::panic::set_hook(Box::new(|_| {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"safexec: internal error\n");
    }));
    // Before opening anything: a closed fd 0-2 would otherwise be reused by one of our files.
    if sys::ensure_std_fds().is_err() {
        msg::diag(&msg::std_fds_failed());
        return 1;
    }
    let argv: Vec<OsString> = std::env::args_os().collect();
    let snap = Snapshot::capture();
    msg::set_quiet(snap.quiet);
    let hardened = sys::geteuid().0 == 0;
    if hardened {
        // While we hold root: no core dump, no same-uid ptrace or /proc/<pid>/mem access.
        if let Err(e) = sys::set_dumpable(false) {
            msg::diag(&msg::entry_failed("PR_SET_DUMPABLE", &e));
            return 1;
        }
        if let Err(e) = sys::no_core_dumps() {
            msg::diag(&msg::entry_failed("RLIMIT_CORE", &e));
            return 1;
        }
        // Files we create are private unless chmod'ed explicitly; the tool inherits 077 too.
        sys::umask(0o077);
    }
    let argv0 = argv.first().cloned().unwrap_or_default();
    let result = match cli::dispatch(&argv) {
        Action::Version => {
            msg::print_version();
            // After the version block, so NPP's `safexec -v 2>&1 | awk 'NR==1'` still reads
            // the version first.
            config_warnings();
            return 0;
        }
        Action::Usage(code) => {
            msg::print_usage(&argv0);
            return code;
        }
        Action::BadKill(raw) => Err(Error::line(msg::invalid_pid(&raw))),
        Action::Kill(pid) => kill::kill(pid),
        Action::Run(args) => run_mode(&argv0, &args, &snap, hardened),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            report(&e, &argv0);
            1
        }
    }
}

/// `safexec -v`: warns on stderr about configuration lines that grant nothing, so an
/// administrator sees why a site user is refused (a `cache_root` without `allow=`, a cache root
/// that fails the ancestor check, a `caller_job_user` naming a missing account). Reads only the
/// root-owned configuration and the paths it names; nothing the caller chose.
fn config_warnings() {
    let cfg = match crate::config::load() {
        Ok(loaded) => {
            if let Some(w) = &loaded.warning {
                msg::diag(&msg::config_warning(w));
            }
            loaded.config
        }
        Err(e) => return msg::diag(&msg::config_error(&e)),
    };
    for root in &cfg.cache_roots {
        if root.allow.is_empty() {
            msg::diag(&msg::root_without_allow(&root.path));
        }
        match crate::users::by_name(&root.owner) {
            None => msg::diag(&msg::root_unusable(
                &root.path,
                &format!("its owner '{}' is not in /etc/passwd", root.owner),
            )),
            Some(owner) => {
                if let Err(why) = resolve::open_cache_root(&root.path, owner.uid) {
                    msg::diag(&msg::root_unusable(&root.path, &why));
                }
            }
        }
    }
    for m in &cfg.caller_job_users {
        if crate::users::by_name(&m.job_user).is_none() {
            msg::diag(&msg::mapped_job_user_missing_warning(
                &m.caller,
                &m.job_user,
            ));
        }
    }
}

/// Prints an error: the single place where [`Error`] reaches the user.
fn report(e: &Error, argv0: &OsStr) {
    match e {
        Error::Usage => msg::print_usage(argv0),
        Error::Refused(lines) => lines.iter().for_each(|l| msg::diag(l)),
        Error::RefusedWithUsage(lines) => {
            lines.iter().for_each(|l| msg::diag(l));
            msg::print_usage(argv0);
        }
    }
}

/// A job ready to execute: everything validated, nothing privileged done yet.
pub struct Job {
    /// Native wrappers and the tool.
    pub prelude: Prelude,
    /// The tool token as the caller wrote it (the tool's `argv[0]`).
    pub tool_token: OsString,
    /// The checked tool arguments.
    pub checked: Checked,
    /// The pinned executable.
    pub pinned: Pinned,
}

impl Job {
    /// argv for the tool.
    pub fn argv(&self) -> Vec<CString> {
        std::iter::once(&self.tool_token)
            .chain(self.checked.args.iter())
            .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
            .collect()
    }
}

fn run_mode(argv0: &OsStr, args: &[OsString], snap: &Snapshot, hardened: bool) -> Result<()> {
    let prelude = prelude::scan(args)?;
    let tool_token = args[prelude.tool_index].clone();
    // Arguments first: a refused argument never causes any filesystem access.
    let checked =
        policy::check(prelude.tool, &args[prelude.tool_index + 1..]).map_err(Error::line)?;
    let pinned = resolve::pin(&tool_token, prelude::base(&tool_token)).map_err(Error::line)?;
    msg::diag(&msg::pinned_tool(
        &tool_token,
        &pinned.path.display().to_string(),
    ));
    if prelude.nohup {
        msg::diag(&msg::nohup_native());
    }
    let job = Job {
        prelude,
        tool_token,
        checked,
        pinned,
    };
    if hardened {
        Err(hardened::run(job, snap))
    } else {
        Err(pass_through(argv0, job, snap))
    }
}

/// Applies `SAFEXEC_SAFE_CWD` with the current (final) ids.
pub fn apply_safe_cwd(mode: SafeCwd) {
    let check = match mode {
        SafeCwd::On => true,
        SafeCwd::Off => false,
        SafeCwd::IfTty => (0..=2).any(sys::isatty),
    };
    if check && !sys::writable(c".") {
        msg::diag(&msg::cwd_switch());
        if sys::chdir(c"/tmp").is_err() {
            if let Err(e) = sys::chdir(c"/") {
                msg::diag(&msg::cwd_failed(&e));
            }
        }
    }
}

/// Not setuid root: the allowlist, argument policy and pinning were enforced; run as the
/// caller with the same clean environment and descriptor hygiene.
fn pass_through(argv0: &OsStr, job: Job, snap: &Snapshot) -> Error {
    apply_safe_cwd(snap.safe_cwd);
    msg::diag(&msg::passthrough_mode(sys::geteuid().0));
    msg::diag(&msg::passthrough_starting(
        &job.pinned.path.display().to_string(),
    ));
    msg::diag(&msg::passthrough_note(argv0));
    if job.prelude.nice {
        let _ = sys::nice(10);
    }
    let mut s = sys::Linux;
    if let Err(e) = s.reset_signals(job.prelude.nohup) {
        return Error::line(msg::drop_step_failed("signal reset", &e.to_string()));
    }
    let fd = job.pinned.fd.as_raw_fd();
    if let Err(e) = s.close_fds_from_3(fd) {
        return Error::line(msg::drop_step_failed("close_range", &e.to_string()));
    }
    let err = s.execveat(fd, &job.argv(), &env::tool_env());
    Error::line(msg::exec_failed(&err))
}
