//! The crate's one error type; the binary prints it once, as one line.

use std::fmt;

/// Why a purge did not start or could not finish. Every variant that comes back from
/// [`Purger::open`](crate::Purger::open) or from argument checking means nothing was deleted.
#[derive(Debug)]
pub enum Error {
    /// Bad input: a URL, template, levels value or option combination (exit 2).
    Usage(String),
    /// An unsafe setup refused: the cache root, its owner, running as root (exit 3).
    Refused(String),
    /// An I/O or index failure while purging (exit 1).
    Failed(String),
}

impl Error {
    /// The process exit code for this error (see `cache-purge --help`).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Failed(_) => 1,
            Error::Usage(_) => 2,
            Error::Refused(_) => 3,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Refused(m) | Error::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<nginx_cache::Error> for Error {
    fn from(e: nginx_cache::Error) -> Self {
        match e {
            nginx_cache::Error::Index(_) => Error::Failed(e.to_string()),
            _ => Error::Usage(e.to_string()),
        }
    }
}
