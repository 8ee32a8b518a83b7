//! The one error type of the service; `main` prints it once.

use std::fmt;

/// Why the service cannot start or run.
#[derive(Debug)]
pub enum Error {
    /// Bad command line.
    Usage(String),
    /// Configuration, sockets or identity are not usable.
    Setup(String),
    /// An I/O failure outside any single request.
    Io(String, std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Setup(m) => f.write_str(m),
            Error::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for Error {}
