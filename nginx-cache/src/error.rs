//! The crate's one error type.

use std::fmt;

/// Why a key template, a `levels=` value or a request cannot be used.
///
/// The messages name the command-line options (`--cache-key`, `--levels`) because both tools
/// built on this crate take them under those names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The `--cache-key` template is malformed or uses a variable this crate cannot compute.
    Template(String),
    /// The `--levels` value is not 1 to 3 levels of 1 or 2.
    Levels(String),
    /// A key split back into its parts does not fit the template.
    Split(String),
    /// The key index cannot be read or written.
    Index(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Template(m) => write!(f, "--cache-key: {m}"),
            Error::Levels(m) => write!(f, "--levels: {m}"),
            Error::Split(m) => f.write_str(m),
            Error::Index(m) => write!(f, "key index: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for String {
    fn from(e: Error) -> String {
        e.to_string()
    }
}
