//! Hand-parsed command line, in the exact dispatch order of spec §1.1.
//!
//! Only `argv[1]` selects the mode; everything after the tool is the tool's, checked by
//! [`crate::policy`]. Arguments stay `OsString` throughout: non-UTF-8 bytes are legal.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Print the version block, exit 0.
    Version,
    /// Print usage, exit with this code.
    Usage(i32),
    /// `--kill=<pid>` with a valid pid.
    Kill(i32),
    /// `--kill=<raw>` with an invalid pid: the raw text for the message.
    BadKill(OsString),
    /// Run mode: argv from index 1 on (the prelude and the tool).
    Run(Vec<OsString>),
}

/// Decides the action from the full argv (`argv[0]` included; it may be missing or empty).
pub fn dispatch(argv: &[OsString]) -> Action {
    // Row 1 before row 2: `-v` with extra arguments still prints the version.
    let Some(a1) = argv.get(1) else {
        return Action::Usage(1);
    };
    let b = a1.as_bytes();
    if b == b"--version" || b == b"-v" {
        return Action::Version;
    }
    if b == b"--help" || b == b"-h" {
        return Action::Usage(0);
    }
    if let Some(rest) = b.strip_prefix(b"--kill") {
        return match rest.strip_prefix(b"=") {
            Some(raw) => match parse_pid(raw) {
                Some(pid) => Action::Kill(pid),
                None => Action::BadKill(OsStr::from_bytes(raw).to_os_string()),
            },
            None => Action::Usage(1),
        };
    }
    if b.first() == Some(&b'-') || (!b.is_empty() && b.iter().all(u8::is_ascii_digit)) {
        return Action::Usage(1);
    }
    Action::Run(argv[1..].to_vec())
}

/// `strtol(s, &end, 10)` semantics with full-string and range checks: leading C-locale
/// whitespace and one sign are accepted; no digits, trailing bytes, overflow, or a value
/// outside 1..=INT_MAX are rejected.
pub fn parse_pid(raw: &[u8]) -> Option<i32> {
    let mut s = raw;
    while let Some((&c, rest)) = s.split_first() {
        if matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
            s = rest;
        } else {
            break;
        }
    }
    let negative = match s.first() {
        Some(b'+') => {
            s = &s[1..];
            false
        }
        Some(b'-') => {
            s = &s[1..];
            true
        }
        _ => false,
    };
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: i64 = 0;
    for &d in s {
        v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
        if v > i64::from(i32::MAX) {
            return None;
        }
    }
    if negative || v == 0 {
        return None;
    }
    i32::try_from(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<OsString> {
        items.iter().map(OsString::from).collect()
    }

    #[test]
    fn dispatch_table() {
        let cases: &[(&[&str], Action)] = &[
            (&["safexec", "--version"], Action::Version),
            (&["safexec", "-v", "x", "y"], Action::Version),
            (&["safexec"], Action::Usage(1)),
            (&[], Action::Usage(1)),
            (&[""], Action::Usage(1)),
            (&["safexec", "--help"], Action::Usage(0)),
            (&["safexec", "-h"], Action::Usage(0)),
            (&["safexec", "--kill"], Action::Usage(1)),
            (&["safexec", "--killall"], Action::Usage(1)),
            (&["safexec", "--kill-x"], Action::Usage(1)),
            (&["safexec", "--kill=7"], Action::Kill(7)),
            (&["safexec", "-x"], Action::Usage(1)),
            (&["safexec", "--"], Action::Usage(1)),
            (&["safexec", "--foo"], Action::Usage(1)),
            (&["safexec", "123"], Action::Usage(1)),
            (&["safexec", "0"], Action::Usage(1)),
        ];
        for (input, want) in cases {
            assert_eq!(&dispatch(&argv(input)), want, "{input:?}");
        }
        assert_eq!(
            dispatch(&argv(&["safexec", "--kill", "5"])),
            Action::Usage(1)
        );
        assert_eq!(
            dispatch(&argv(&["safexec", "wget", "-q"])),
            Action::Run(argv(&["wget", "-q"]))
        );
        assert_eq!(
            dispatch(&argv(&["safexec", "+5", "wget"])),
            Action::Run(argv(&["+5", "wget"]))
        );
    }

    #[test]
    fn kill_pid_parsing_matches_strtol_rules() {
        for ok in ["7", "+7", " 7", "\t7", "007", "2147483647"] {
            assert!(parse_pid(ok.as_bytes()).is_some(), "{ok}");
        }
        assert_eq!(parse_pid(b"+1"), Some(1));
        assert_eq!(parse_pid(b" 1"), Some(1));
        assert_eq!(parse_pid(b"001"), Some(1));
        for bad in [
            "",
            "abc",
            "0",
            "-5",
            "2147483648",
            "5x",
            "0x10",
            " ",
            "+",
            "-0",
            "1 ",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_pid(bad.as_bytes()), None, "{bad:?}");
        }
        assert_eq!(
            dispatch(&argv(&["s", "--kill=abc"])),
            Action::BadKill("abc".into())
        );
    }
}
