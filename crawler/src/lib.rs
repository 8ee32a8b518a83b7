//! `cache_preload`: warms nginx page caches after a purge with the exact
//! request lines a browser sends, and speaks the GNU wget command line and
//! `--no-verbose` log format that the NPP WordPress plugin drives.
//!
//! The crate is organised so that the binary is a thin shell:
//! [`cli`] turns argv (native or wget dialect) into one [`cli::Config`],
//! [`crawl::run`] performs the crawl and returns a [`crawl::Summary`],
//! and `main` prints the single [`Error`] on failure.
#![forbid(unsafe_code)]

pub mod cli;
pub mod crawl;
pub mod dns;
mod error;
pub mod fetch;
pub mod frontier;
pub mod json;
pub mod links;
pub mod log;
pub mod norm;
pub mod progress;
pub mod rewarm;
pub mod sitemap;
pub mod warm;

pub use error::Error;

/// Exit status: every page fetched with a 2xx final response.
pub const EXIT_OK: i32 = 0;
/// Exit status: an internal or I/O error unrelated to the site.
pub const EXIT_INTERNAL: i32 = 1;
/// Exit status: bad command-line arguments (unknown option, bad value, bad regex).
pub const EXIT_USAGE: i32 = 2;
/// Exit status: network failure, nothing could be fetched at all.
pub const EXIT_NETWORK: i32 = 4;
/// Exit status: partial success, some pages failed (HTTP error or network error).
pub const EXIT_PARTIAL: i32 = 8;
/// Exit status after SIGTERM (128 + 15), without the summary.
pub const EXIT_SIGTERM: i32 = 143;
/// Exit status after SIGINT (128 + 2), without the summary.
pub const EXIT_SIGINT: i32 = 130;
