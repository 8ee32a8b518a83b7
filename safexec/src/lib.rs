//! safexec: a hardened setuid exec wrapper, a drop-in for the C safexec 1.9.6.
//!
//! Module ownership while the crate is being built (see the issues):
//! - `config` and `confine/` — confinement (issue 4): `/etc/safexec.conf`, capabilities,
//!   seccomp, cgroups, rlimits.
//! - everything else — the core wrapper (issue 3): CLI, policy, resolution, privilege drop,
//!   kill, the `sys` layer.

pub mod config;
pub mod confine;
