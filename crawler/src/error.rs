use std::fmt;
use std::io;

/// The one error type of the crate; `main` prints it once, as a single line, and exits with
/// [`Error::exit_code`]. Failures of single pages are not errors: they are reported as events
/// and counted in the summary's exit status.
#[derive(Debug)]
pub enum Error {
    /// Bad command-line input: unknown option, bad value, invalid regex or URL (exit 2).
    Usage(String),
    /// A file or directory named on the command line cannot be read: `--url-list`,
    /// `--replay-keys` (exit 1; the arguments were fine, the file system said no).
    Input {
        /// What was being read, e.g. `--url-list '/x'`.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// The HTTP client could not be set up (exit 1).
    Client(String),
    /// The process could not run at all: async runtime, signal handlers (exit 1).
    Runtime(String),
}

impl Error {
    /// The process exit status this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => crate::EXIT_USAGE,
            Error::Input { .. } | Error::Client(_) | Error::Runtime(_) => crate::EXIT_INTERNAL,
        }
    }

    pub(crate) fn usage(msg: impl Into<String>) -> Self {
        Error::Usage(msg.into())
    }

    pub(crate) fn input(what: impl Into<String>, source: io::Error) -> Self {
        Error::Input {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn client(e: impl fmt::Display) -> Self {
        Error::Client(format!("cannot build HTTP client: {e}"))
    }
}

/// Writes `m` with control characters as spaces: a caller's log parser must never see a
/// message split across lines.
fn one_line(f: &mut fmt::Formatter<'_>, m: &str) -> fmt::Result {
    for ch in m.chars() {
        let ch = if ch.is_control() { ' ' } else { ch };
        write!(f, "{ch}")?;
    }
    Ok(())
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Client(m) | Error::Runtime(m) => one_line(f, m),
            Error::Input { what, source } => one_line(f, &format!("cannot read {what}: {source}")),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Input { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_exit_codes_and_print_one_line() {
        assert_eq!(Error::usage("bad\nflag").exit_code(), crate::EXIT_USAGE);
        assert_eq!(Error::usage("bad\nflag").to_string(), "bad flag");
        let e = Error::input(
            "--url-list '/x'",
            io::Error::new(io::ErrorKind::NotFound, "No such file"),
        );
        assert_eq!(e.exit_code(), crate::EXIT_INTERNAL);
        assert_eq!(e.to_string(), "cannot read --url-list '/x': No such file");
        assert_eq!(Error::client("no TLS").exit_code(), crate::EXIT_INTERNAL);
        assert_eq!(Error::Runtime("x".into()).exit_code(), crate::EXIT_INTERNAL);
    }
}
