use std::fmt;

/// The one error type of the crate; `main` prints it as a single line.
#[derive(Debug)]
pub enum Error {
    /// Bad command-line input: unknown option, bad value, invalid regex.
    Usage(String),
    /// Anything else that stops the run before or outside the crawl itself.
    Internal(String),
}

impl Error {
    /// The process exit status this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => crate::EXIT_USAGE,
            Error::Internal(_) => crate::EXIT_INTERNAL,
        }
    }

    pub(crate) fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub(crate) fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Internal(m) => {
                // One line, always: a caller's log parser must never see a
                // message split across lines.
                for ch in m.chars() {
                    let ch = if ch.is_control() { ' ' } else { ch };
                    write!(f, "{ch}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}
