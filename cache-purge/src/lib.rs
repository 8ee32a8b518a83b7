//! `cache_purge`: deletes nginx cache entries exactly, by key prefix or all, as the cache owner.
//!
//! The deletion engine behind the `cache-purge` command and the purge service:
//!
//! ```no_run
//! use cache_purge::{IndexMode, Options, Purger};
//!
//! let mut p = Purger::open(&Options {
//!     root: "/var/cache/nginx/example.com".into(),
//!     key: nginx_cache::DEFAULT_KEY.into(),
//!     levels: "1:2".into(),
//!     owner_uid: 33,
//!     index: IndexMode::Auto(cache_purge::DEFAULT_INDEX_DIR.into()),
//!     dry_run: false,
//! })?;
//! let r = p.purge_url("https://example.com/about/")?;
//! println!("{} {} files", r.status(), r.files);
//! # Ok::<(), cache_purge::Error>(())
//! ```
//!
//! Safety model (see [`tree`]): every path is resolved from the root's descriptor without
//! following links or crossing mounts; only regular files of the cache owner with one link are
//! deleted; keys are read at the header's fixed offset; the process must be the cache owner and
//! never root ([`privileges`] drops root to the owner for the command).
#![forbid(unsafe_code)]

mod error;
pub mod privileges;
mod purger;
pub mod tree;

pub use error::Error;
pub use purger::{
    index_file, IndexMode, IndexStats, Kind, Lookup, Options, Purger, Report, DEFAULT_INDEX_DIR,
};
