//! The crate's one error type, printed once by `main` as a single line.

use std::fmt;
use std::path::{Path, PathBuf};

/// Everything that stops `cache-setup` before it acts.
#[derive(Debug)]
pub enum Error {
    /// A problem at a place in a configuration file (nginx or PHP-FPM).
    At {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong there.
        message: String,
    },
    /// A file or directory could not be read or written.
    Io {
        /// What was being done ("read", "write", "rename", ...).
        action: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// Anything else, already phrased for the user.
    Msg(String),
}

impl Error {
    /// An error at `file:line`.
    pub fn at(file: &Path, line: usize, message: impl Into<String>) -> Error {
        Error::At {
            file: file.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(action: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::At {
                file,
                line,
                message,
            } => write!(f, "{}:{line}: {message}", file.display()),
            Error::Io {
                action,
                path,
                source,
            } => {
                // The io::Error text carries a trailing "(os error N)"; keep just the reason.
                let text = source.to_string();
                let reason = text.split(" (os error").next().unwrap_or(&text);
                write!(f, "cannot {action} {}: {reason}", path.display())
            }
            Error::Msg(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
