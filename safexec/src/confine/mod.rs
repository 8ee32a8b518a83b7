//! Confinement of a job: capabilities, seccomp, cgroups and rlimits.
//!
//! INTERFACE CONTRACT (called by the core's privilege-drop pipeline, in this order):
//! 1. [`place_in_cgroup`] as root, after the job record is written;
//! 2. [`lower_rlimits`] as root;
//! 3. [`drop_bounding_set`] as root, right before setgroups/setresgid/setresuid;
//! 4. the core drops the ids and sets NO_NEW_PRIVS (fatal on failure);
//! 5. [`verify_no_capabilities`] after the drop;
//! 6. [`install_seccomp`] last, right before execveat.
//!
//! Placeholders until issue 4 implements them.

use crate::config::Config;

/// Where a job was placed; printed in the `Summary: cgroup=` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// The job's own cgroup (one path per hierarchy on a v1 or hybrid host).
    Cgroup(Vec<String>),
    /// No cgroup could be used; only rlimits apply.
    RlimitsOnly,
}

/// Creates `<parent>/nppp.<pid>` with the configured limits and moves the calling process into it.
pub fn place_in_cgroup(_cfg: &Config, _pid: u32) -> Result<Placement, String> {
    Ok(Placement::RlimitsOnly)
}

/// Lowers (never raises) rlimits to the configured values; sets RLIMIT_CORE to 0.
pub fn lower_rlimits(_cfg: &Config) -> Result<(), String> {
    Ok(())
}

/// Clears the ambient and inheritable sets, drops the bounding set and locks securebits.
pub fn drop_bounding_set() -> Result<(), String> {
    Ok(())
}

/// Verifies that the permitted, effective, inheritable, ambient and bounding sets are empty.
pub fn verify_no_capabilities() -> Result<(), String> {
    Ok(())
}

/// Installs the seccomp deny filter (EPERM for dangerous syscalls).
pub fn install_seccomp() -> Result<(), String> {
    Ok(())
}
