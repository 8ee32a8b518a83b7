//! cache-setup: reads the live nginx and PHP-FPM configuration, reports every cached site with
//! its key and PHP user (`detect`), checks the traps that make a page cache useless or unsafe
//! (`doctor`) and writes the `cache_root` lines of /etc/safexec.conf (`apply`).
//!
//! Layers point one way: `nginx` (lexer → conf → model) and `fpm` read files; `detect` joins
//! them; `doctor` and `apply` consume a [`detect::Report`]; `main` prints the one [`Error`].
#![forbid(unsafe_code)]

pub mod apply;
/// The command line (also read by build.rs to generate the man page).
pub mod cli;
pub mod detect;
pub mod doctor;
pub mod error;
pub mod fpm;
pub mod host;
pub mod nginx;
pub mod users;

pub use error::{Error, Result};
