//! Command-line handling: two dialects (native clap CLI and the GNU wget
//! subset NPP uses) that both produce one [`Config`].
//!
//! # Dialect selection (exact rule)
//!
//! The wget dialect is used when
//! 1. the basename of `argv[0]` is `wget`, or
//! 2. any argument *before* the first `--` is a wget marker: one of
//!    `--no-verbose`, `-nv`, `--quiet`, `-q`, `--recursive`, `-r`,
//!    `--delete-after`, `--no-config`, `--no-cookies`, `--execute`, `-e`,
//!    `--directory-prefix`, `-P`, `--level`, `-l`; a long marker also counts
//!    in its `--name=value` form, and `-e`, `-P`, `-l` also with an attached
//!    value (`-erobots=off`, `-P/tmp`, `-linf`).
//!
//! Otherwise the native dialect is used. The native CLI deliberately has
//! none of these names, so the rule is never ambiguous. Every NPP command
//! line contains `--no-config` and `--delete-after`, so
//! `safexec nohup cache-preload <NPP's wget flags> -- URL` selects the wget
//! dialect.
//!
//! # `--reject-regex`: Rust `regex` versus wget's POSIX ERE
//!
//! The pattern is matched (unanchored, case-sensitive, like wget) against
//! the full absolute URL as requested, query included. It is compiled with
//! the Rust `regex` crate, and an invalid pattern is a usage error (exit 2)
//! before any request. Differences from POSIX ERE that can matter:
//! * A backslash inside a bracket expression is an escape in Rust
//!   (`[\]]` is a `]`), a literal in POSIX; `[[:alpha:]]` classes work in both.
//! * `\d`, `\w`, `\s`, `\b` are Perl classes in Rust; in ERE they are
//!   undefined (glibc treats `\w`/`\b` as GNU extensions).
//! * An unclosed `{` (`a{`), `{,n}`, or an unmatched `(`/`)` is an error in
//!   Rust where some ERE implementations take it literally: escape it.
//! * No backreferences or look-around in either; Rust's `.` and classes are
//!   Unicode-aware (URLs here are ASCII, so this does not change matches).
//! * Leftmost-first instead of leftmost-longest alternation; irrelevant for
//!   a yes/no reject decision.
//!
//! Patterns made of escaped literals and alternations, like NPP's default
//! exclusions (`/wp-admin/|…|\?|=|&|#`), behave identically under both.
//!
//! # Headers
//!
//! Both dialects send a desktop Chrome `User-Agent`, Chrome's navigation
//! `Accept` and `Accept-Encoding: gzip, deflate, br, zstd`. `--user-agent`
//! and each `--header` replace the default of the same name, so NPP's own
//! `--header=Accept: …` and `--user-agent=…` win, while `Accept-Encoding`
//! stays the browser value (matching visitors' `Vary` variants) unless a
//! `--header=Accept-Encoding: …` is given.

mod args;
mod native;
mod warm;
mod wget;

use std::time::Duration;

use regex::Regex;

use crate::config::{Config, Dialect, ACCEPT_BROWSER, ACCEPT_ENCODING_BROWSER};
use crate::Error;

pub use args::NativeArgs;

/// The outcome of parsing argv.
#[derive(Debug)]
pub enum Parsed {
    /// Run a crawl.
    Run(Box<Config>),
    /// Print this text to stdout and exit 0 (help, version, man page…).
    Print(String),
}

/// True if `arg` is one of the wget-dialect marker arguments.
pub fn is_wget_marker(arg: &str) -> bool {
    const LONG: &[&str] = &[
        "--no-verbose",
        "--quiet",
        "--recursive",
        "--delete-after",
        "--no-config",
        "--no-cookies",
        "--execute",
        "--directory-prefix",
        "--level",
    ];
    const SHORT: &[&str] = &["-nv", "-q", "-r", "-e", "-P", "-l"];
    if SHORT.contains(&arg) {
        return true;
    }
    if arg.len() > 2
        && (arg.starts_with("-e") || arg.starts_with("-P") || arg.starts_with("-l"))
        && !arg.starts_with("--")
    {
        return true;
    }
    let name = arg.split_once('=').map_or(arg, |(n, _)| n);
    LONG.contains(&name)
}

/// Decide the dialect for this argv (see the module docs for the rule).
pub fn detect_dialect(argv: &[String]) -> Dialect {
    let argv0_is_wget = argv.first().is_some_and(|a0| {
        std::path::Path::new(a0)
            .file_name()
            .is_some_and(|n| n == "wget")
    });
    if argv0_is_wget {
        return Dialect::Wget;
    }
    let marker = argv
        .iter()
        .skip(1)
        .take_while(|a| a.as_str() != "--")
        .any(|a| is_wget_marker(a));
    if marker {
        Dialect::Wget
    } else {
        Dialect::Native
    }
}

/// Parse a full argv (including `argv[0]`); `env` looks up environment
/// variables (only `PCTNORM_CASE` is read).
pub fn parse(argv: &[String], env: &dyn Fn(&str) -> Option<String>) -> Result<Parsed, Error> {
    match detect_dialect(argv) {
        Dialect::Wget => wget::parse(argv, env),
        Dialect::Native => native::parse(argv, env),
    }
}

/// Default percent-encoding mode from `PCTNORM_CASE` (set by safexec), if any.
pub(crate) fn env_pct_mode(
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<crate::discover::norm::PctMode>, Error> {
    match env("PCTNORM_CASE") {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => v
            .trim()
            .parse()
            .map(Some)
            .map_err(|e| Error::usage(format!("PCTNORM_CASE: {e}"))),
    }
}

/// Compile a reject regex, turning a syntax error into a one-line usage error.
pub(crate) fn compile_reject_regex(pattern: &str) -> Result<Regex, Error> {
    regex::RegexBuilder::new(pattern)
        .size_limit(16 << 20)
        .build()
        .map_err(|e| {
            let first = e.to_string();
            let detail = first
                .lines()
                .rev()
                .find(|l| l.starts_with("error:"))
                .unwrap_or("invalid pattern")
                .to_string();
            Error::usage(format!("invalid --reject-regex '{pattern}': {detail}"))
        })
}

/// Compile a wget-style reject list (`*.css,jpg,…`) into one regex matched
/// against the last path segment. Items with `*`, `?` or `[` are globs;
/// others are suffixes.
pub(crate) fn compile_reject_list(list: &str, ignore_case: bool) -> Result<Option<Regex>, Error> {
    let mut alts = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item.contains(['*', '?', '[']) {
            let mut re = String::from("^");
            for ch in item.chars() {
                match ch {
                    '*' => re.push_str(".*"),
                    '?' => re.push('.'),
                    c => re.push_str(&regex::escape(&c.to_string())),
                }
            }
            re.push('$');
            alts.push(re);
        } else {
            alts.push(format!("{}$", regex::escape(item)));
        }
    }
    if alts.is_empty() {
        return Ok(None);
    }
    let joined = alts
        .iter()
        .map(|a| format!("(?:{a})"))
        .collect::<Vec<_>>()
        .join("|");
    regex::RegexBuilder::new(&joined)
        .case_insensitive(ignore_case)
        .build()
        .map(Some)
        .map_err(|e| Error::usage(format!("invalid --reject list '{list}': {e}")))
}

/// Parse a rate such as `5120k`, `1.5m` or `2048` into bytes per second.
pub(crate) fn parse_rate(s: &str) -> Result<u64, Error> {
    let t = s.trim();
    let (num, mul) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1024.0),
        Some('m' | 'M') => (&t[..t.len() - 1], 1024.0 * 1024.0),
        Some('g' | 'G') => (&t[..t.len() - 1], 1024.0 * 1024.0 * 1024.0),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| Error::usage(format!("invalid rate '{s}'")))?;
    if !v.is_finite() || v < 0.0 {
        return Err(Error::usage(format!("invalid rate '{s}'")));
    }
    Ok((v * mul) as u64)
}

/// Parse seconds (`1.5`, `2s`, `1m`, `1h`) into a duration.
pub(crate) fn parse_secs(s: &str, what: &str) -> Result<Duration, Error> {
    let t = s.trim();
    let (num, mul) = match t.chars().last() {
        Some('s') => (&t[..t.len() - 1], 1.0),
        Some('m') => (&t[..t.len() - 1], 60.0),
        Some('h') => (&t[..t.len() - 1], 3600.0),
        Some('d') => (&t[..t.len() - 1], 86400.0),
        _ => (t, 1.0),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| Error::usage(format!("invalid {what} '{s}'")))?;
    secs(v * mul, what)
}

pub(crate) fn secs(v: f64, what: &str) -> Result<Duration, Error> {
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(Error::usage(format!("invalid {what} '{v}'")));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Parse a `Name: value` header argument.
pub(crate) fn parse_header(h: &str) -> Result<(String, String), Error> {
    let (n, v) = h
        .split_once(':')
        .ok_or_else(|| Error::usage(format!("invalid header '{h}' (expected 'Name: value')")))?;
    let n = n.trim();
    if n.is_empty()
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        || v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0)
    {
        return Err(Error::usage(format!("invalid header '{h}'")));
    }
    Ok((n.to_string(), v.trim().to_string()))
}

/// Default headers, then `extra` replacing same-named defaults (case-insensitive).
pub(crate) fn build_headers(ua: &str, extra: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = vec![
        ("User-Agent".into(), ua.into()),
        ("Accept".into(), ACCEPT_BROWSER.into()),
        ("Accept-Encoding".into(), ACCEPT_ENCODING_BROWSER.into()),
    ];
    for (n, v) in extra {
        if let Some(slot) = h.iter_mut().find(|(k, _)| k.eq_ignore_ascii_case(&n)) {
            slot.1 = v;
        } else {
            h.push((n, v));
        }
    }
    h
}

/// Parse a comma-separated status list like `503,429`.
pub(crate) fn parse_status_list(s: &str) -> Result<Vec<u16>, Error> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| {
            x.parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
                .ok_or_else(|| Error::usage(format!("invalid HTTP status '{x}' in '{s}'")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn dialect_rule() {
        assert_eq!(
            detect_dialect(&v(&["/usr/bin/wget", "http://x/"])),
            Dialect::Wget
        );
        assert_eq!(
            detect_dialect(&v(&["cache-preload", "http://x/"])),
            Dialect::Native
        );
        assert_eq!(
            detect_dialect(&v(&["cache-preload", "--no-config", "http://x/"])),
            Dialect::Wget
        );
        assert_eq!(
            detect_dialect(&v(&["cache-preload", "-erobots=off", "x"])),
            Dialect::Wget
        );
        assert_eq!(
            detect_dialect(&v(&["cache-preload", "-l", "inf"])),
            Dialect::Wget
        );
        assert_eq!(
            detect_dialect(&v(&["cache-preload", "--level=3"])),
            Dialect::Wget
        );
        assert_eq!(
            detect_dialect(&v(&["cache-preload", "--", "-q"])),
            Dialect::Native
        );
        assert_eq!(
            detect_dialect(&v(&["cache-preload", "--json", "--wait", "1"])),
            Dialect::Native
        );
        assert_eq!(detect_dialect(&v(&["wget-not"])), Dialect::Native);
    }

    #[test]
    fn helpers() {
        assert_eq!(parse_rate("5120k").unwrap(), 5120 * 1024);
        assert_eq!(parse_rate("2048").unwrap(), 2048);
        assert!(parse_rate("fast").is_err());
        assert_eq!(
            parse_secs("1.5", "wait").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_secs("2m", "wait").unwrap(), Duration::from_secs(120));
        assert!(parse_secs("-1", "wait").is_err());
        assert!(parse_header("X-A: b").is_ok());
        assert!(parse_header("bad header: x").is_err());
        assert!(parse_header("nocolon").is_err());
        assert_eq!(parse_status_list("503,429").unwrap(), vec![503, 429]);
        assert!(parse_status_list("99").is_err());
        let h = build_headers("UA", vec![("accept-encoding".into(), "identity".into())]);
        assert_eq!(h[2], ("Accept-Encoding".into(), "identity".into()));
    }

    #[test]
    fn reject_list() {
        let r = compile_reject_list("*.css,JPG,*.min.*", true)
            .unwrap()
            .unwrap();
        assert!(r.is_match("style.CSS"));
        assert!(r.is_match("photo.jpg"));
        assert!(r.is_match("app.min.js"));
        assert!(!r.is_match("page"));
        let r = compile_reject_list("*.css", false).unwrap().unwrap();
        assert!(!r.is_match("A.CSS"));
        assert!(compile_reject_list("", true).unwrap().is_none());
    }

    #[test]
    fn bad_regex_is_usage_error() {
        let e = compile_reject_regex("(unclosed").unwrap_err();
        assert_eq!(e.exit_code(), crate::EXIT_USAGE);
        assert!(!e.to_string().contains('\n'));
        assert!(compile_reject_regex(r"/wp-admin/|\?|=|&|#").is_ok());
    }
}
