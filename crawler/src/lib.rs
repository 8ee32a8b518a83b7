//! `cache_preload`: warms nginx page caches after a purge with the exact request lines a browser
//! sends, and speaks the GNU wget command line and `--no-verbose` log format that the NPP
//! WordPress plugin drives.
//!
//! # Layers
//!
//! Dependencies point one way, from the top of this list to the bottom (a test,
//! `tests/layers.rs`, fails if a module imports one above it):
//!
//! | layer | job |
//! |---|---|
//! | [`run`] | the crawl loop; the only module that imports the layers below it all |
//! | [`cli`] | argv → [`config::Config`] |
//! | `report` | typed events and summary (serde), one renderer per output format |
//! | `http` | resolver, client, fetch, body decoding, probes, [`rewarm`]: the only user of `reqwest` |
//! | `discover`, `inspect`, `pace` | what to crawl; what the cache says; how fast to go (no I/O) |
//! | [`config`], [`Error`] | plain data (one group per concern) and the one error type |
//!
//! `main` parses argv with [`cli::parse`], runs [`run::run`] and prints the single [`Error`].
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub(crate) mod discover;
mod error;
pub(crate) mod http;
pub(crate) mod inspect;
pub(crate) mod pace;
pub(crate) mod report;
/// Re-warming single URLs after a purge: the stable entry point of the purge service.
pub mod rewarm {
    pub use crate::http::rewarm::{
        Agent, ConnectTo, RewarmError, RewarmOptions, Rewarmer, VariantResult, Variants,
    };
}
pub mod run;

pub use error::Error;

/// The parsers that take untrusted input, for the fuzz targets (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::discover::links::{decode_entities, extract, LinkLimits, LinkScanner};
    pub use crate::discover::sitemap::{parse_bytes, robots_sitemaps, SitemapLimits};
    pub use crate::inspect::cache_index::{
        key_from_bytes, replay_target, KeyRequest, KeyTemplate, Levels, DEFAULT_KEY,
    };
    pub use nginx_cache::md5_hex;
}

/// The frontier and the normalizer, for `examples/frontier_memory.rs` (not a stable API).
#[doc(hidden)]
pub mod bench {
    pub use crate::discover::frontier::{Frontier, Item, Origin, Push};
    pub use crate::discover::norm::{resolve, NormOptions};
}

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
