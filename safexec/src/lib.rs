//! safexec: a hardened setuid exec wrapper, a drop-in for the C safexec 1.9.6.
//!
//! Module ownership while the crate is being built (see the issues):
//! - `config` and `confine/` — confinement (issue 4): `/etc/safexec.conf`, capabilities,
//!   seccomp, cgroups, rlimits.
//! - everything else — the core wrapper (issue 3): CLI, policy, resolution, privilege drop,
//!   kill, the `sys` layer.
//!
//! Flow: [`app::main`] hardens the process, [`cli`] dispatches, [`prelude`] and [`policy`]
//! validate the argv, [`resolve`] pins the tool to a descriptor, then either pass-through
//! (not setuid) or [`hardened`] → [`drop::run`] → `execveat`. Only [`sys`] contains `unsafe`.

pub mod app;
pub mod cli;
pub mod config;
pub mod confine;
pub mod drop;
pub mod env;
pub mod error;
pub mod hardened;
pub mod jobs;
pub mod kill;
pub mod msg;
pub mod policy;
pub mod prelude;
pub mod resolve;
pub mod shim;
pub mod sys;
pub mod tmpdir;
pub mod users;

pub use app::main;
