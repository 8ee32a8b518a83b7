//! Confinement of a job: capabilities, seccomp, cgroups, rlimits and Landlock.
//!
//! INTERFACE CONTRACT (called by the core's privilege-drop pipeline, in this order):
//! 1. [`compile_seccomp`] as root, early: building the BPF program allocates, and nothing
//!    that can fail for lack of memory should run between the privilege drop and exec;
//! 2. [`place_in_cgroup`] as root, after the job record is written, with the
//!    `SAFEXEC_DETACH` snapshot parsed by [`Detach::from_env_value`];
//! 3. [`lower_rlimits`] as root, with the placement (limits no cgroup enforces become rlimits);
//! 4. [`drop_bounding_set`] as root, right before setgroups/setresgid/setresuid;
//! 5. the core drops the ids and sets NO_NEW_PRIVS (fatal on failure);
//! 6. [`verify_no_capabilities`] after the drop;
//! 7. [`apply_landlock`] with the ruleset [`prepare_landlock`] built as root (from a
//!    [`JobAccess`]: tool, job directory, cache root, tool binary, ports from
//!    [`fetch_ports`]), after NO_NEW_PRIVS and after every file the core itself still opens;
//!    print the returned report lines as `Info:` diagnostics;
//! 8. [`install_seccomp`] last, right before execveat (needs NO_NEW_PRIVS).
//!
//! `--kill` calls [`kill_job_cgroup`] after the job record check, to stop the rest of the job.
//!
//! Errors are one-line messages without an `Error:` prefix; the core prints them.

mod caps;
mod cgroup;
mod landlock;
mod rlimit;
mod seccomp;

pub use self::landlock::{
    allows_for, apply_landlock, fetch_ports, prepare_landlock, Allows, JobAccess, LandlockReport,
    LandlockRuleset,
};
pub use cgroup::{kill_job_cgroup, place_in_cgroup, Detach, Enforced, Placement};
pub use rlimit::lower_rlimits;
pub use seccomp::{compile_seccomp, denied_syscall_names, install_seccomp, SeccompFilter};

/// Clears the ambient and inheritable sets, locks the securebits and empties the bounding set.
///
/// Must run as root (it needs CAP_SETPCAP), before the uid change.
pub fn drop_bounding_set() -> Result<(), String> {
    caps::drop_all(&mut caps::RealCaps)
}

/// Verifies that the permitted, effective, inheritable, ambient and bounding sets are empty.
///
/// Runs after the uid change: the kernel clears permitted/effective on setresuid away from 0,
/// and this proves it did (SECBIT_NO_SETUID_FIXUP would have kept them).
pub fn verify_no_capabilities() -> Result<(), String> {
    caps::verify_empty(&mut caps::RealCaps)
}
