//! `--kill=<pid>`: stop a job this wrapper started.
//!
//! Order (spec §7.3-6, peers.md §3 class 9): open a pidfd first, so the process that is checked
//! is the one that gets the signal; then require a root-owned job record for that pid whose
//! start time matches the live process and whose caller is our real uid (root may stop any
//! job); confirm through the pidfd that the process still exists (so the start time read from
//! /proc belonged to it); then signal through the pidfd. Every refusal prints the same line,
//! so nothing is revealed about processes that are not the caller's jobs.
#![forbid(unsafe_code)]

use std::os::fd::AsFd;

use crate::error::{Error, Result};
use crate::{jobs, msg, sys};

/// Runs kill mode (hardened when running with euid 0).
pub fn kill(pid: i32) -> Result<()> {
    let refused = || Error::line(msg::kill_refused(pid));
    let hardened = sys::geteuid().0 == 0;
    let pidfd = sys::pidfd_open(pid).map_err(|_| refused())?;
    if hardened {
        let rec = jobs::read(pid as u32).ok_or_else(refused)?;
        let caller = sys::getuid().0;
        if caller != 0 && rec.caller != caller {
            return Err(refused());
        }
        if jobs::start_time(&pid.to_string()) != Some(rec.start) {
            return Err(refused());
        }
        // Alive now means alive when its start time was read: the record matched this process.
        sys::pidfd_send_signal(pidfd.as_fd(), 0).map_err(|_| refused())?;
        sys::pidfd_send_signal(pidfd.as_fd(), sys::SIGTERM).map_err(|_| refused())?;
        // The rest of the job (processes the tool forked) is stopped through its cgroup; the
        // configured parent says where that is, and a refused config means the default one.
        let cfg = crate::config::load().map(|l| l.config).unwrap_or_default();
        let _ = crate::confine::kill_job_cgroup(&cfg, pid as u32, sys::SIGTERM);
    } else {
        // Pass-through: the kernel's permission check with the caller's own ids is the policy.
        sys::pidfd_send_signal(pidfd.as_fd(), sys::SIGTERM)
            .map_err(|e| Error::line(msg::kill_failed(&e)))?;
    }
    msg::print_killed(pid);
    Ok(())
}
