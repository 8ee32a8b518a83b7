//! safexec: a hardened setuid exec wrapper, a drop-in for the C safexec 1.9.6.
//!
//! Flow: [`app::main`] hardens the process, [`cli`] dispatches, [`prelude`] and [`policy`]
//! validate the argv, [`resolve`] pins the tool to a descriptor, then either pass-through
//! (not setuid) or [`hardened`] → [`drop::run`] → `execveat`. Only [`sys`] contains `unsafe`:
//! the crate denies `unsafe_code` and that module alone allows it.
#![deny(unsafe_code)]

pub mod app;
pub mod cli;
pub mod config;
pub mod confine;
pub mod drop;
pub mod env;
pub mod error;
pub mod hardened;
pub mod indexdir;
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
