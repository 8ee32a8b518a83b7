//! The crate's one error type; [`crate::app::main`] prints it in exactly one place.
#![forbid(unsafe_code)]

/// Why safexec stops without executing a tool. Every variant exits 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Print the usage block (stdout, silenced by quiet).
    Usage,
    /// One or more finished diagnostic lines (from [`crate::msg`]) for stderr.
    Refused(Vec<String>),
    /// Diagnostic lines, then the usage block.
    RefusedWithUsage(Vec<String>),
}

impl Error {
    /// A single-line refusal.
    pub fn line(s: String) -> Self {
        Error::Refused(vec![s])
    }
}

/// Result alias.
pub type Result<T> = std::result::Result<T, Error>;
