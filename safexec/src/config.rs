//! `/etc/safexec.conf`: the root-owned configuration file.
//!
//! INTERFACE CONTRACT (shared by the core and confinement work; keep the names):
//! the core wrapper calls [`load`] once, as root, before any privilege change, and reads
//! [`Config::cache_roots`] for the owner-based identity switch and [`Config::job_user`] for
//! the default drop target; the confinement code reads the limits.
#![forbid(unsafe_code)]

use std::path::PathBuf;

/// Default location of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/safexec.conf";

/// A cache root and the account that owns it: the only source of an owner-based identity switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRoot {
    /// Canonical absolute directory path.
    pub path: PathBuf,
    /// The user name that jobs under this root run as.
    pub owner: String,
}

/// Resource limits applied to every job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum memory in bytes (`None` = no limit).
    pub memory_max: Option<u64>,
    /// Maximum number of tasks (`None` = no limit).
    pub pids_max: Option<u64>,
    /// cgroup v2 `cpu.weight` (1..=10000, 100 is normal).
    pub cpu_weight: Option<u32>,
    /// CPU quota as a percentage of one CPU (`None` = unlimited).
    pub cpu_quota_percent: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_max: Some(512 * 1024 * 1024),
            pids_max: Some(64),
            cpu_weight: Some(50),
            cpu_quota_percent: None,
        }
    }
}

/// The parsed configuration; [`Config::default`] is what applies without a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Name of the parent cgroup that holds the `nppp.<pid>` job groups.
    pub cgroup_parent: String,
    /// Limits for each job.
    pub limits: Limits,
    /// Cache roots for the owner-based identity switch (rg).
    pub cache_roots: Vec<CacheRoot>,
    /// The account that fetch tools run as.
    pub job_user: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cgroup_parent: "nppp".to_string(),
            limits: Limits::default(),
            cache_roots: Vec::new(),
            job_user: "nobody".to_string(),
        }
    }
}

/// Loads the configuration. A missing file gives the defaults; a file that is not
/// root-owned or is group/other-writable is ignored (the caller prints the warning returned
/// in the error). Placeholder until issue 4 implements the parser.
pub fn load() -> Result<Config, String> {
    Ok(Config::default())
}
