//! The tokens before the tool: native wrappers, and everything that is refused there.
//!
//! Only `nohup` (SIGHUP ignored, then exec) and `nice` without options (+10) are accepted, and
//! both are implemented natively so the exec target is always the tool and the pid stays the
//! caller's `$!`. Wrappers that fork, preload or take option arguments (`time -f wget sh …`
//! made the C allowlist meaningless, spec §7.1-C) are refused, as is any `NAME=VALUE`.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use crate::error::{Error, Result};
use crate::policy::Tool;
use crate::{msg, resolve};

const SHELLS: [&str; 7] = ["sh", "bash", "dash", "ash", "zsh", "ksh", "fish"];
const REFUSED_WRAPPERS: [&str; 7] = [
    "timeout", "stdbuf", "time", "chrt", "ionice", "taskset", "setsid",
];

/// The scanned prelude.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prelude {
    /// `nohup` was given.
    pub nohup: bool,
    /// `nice` was given.
    pub nice: bool,
    /// Index of the tool token in the run arguments.
    pub tool_index: usize,
    /// The tool.
    pub tool: Tool,
}

/// The text after the last `/`.
pub fn base(tok: &OsStr) -> &OsStr {
    let b = tok.as_bytes();
    match b.iter().rposition(|&c| c == b'/') {
        Some(i) => OsStr::from_bytes(&b[i + 1..]),
        None => tok,
    }
}

fn is_assignment(tok: &[u8]) -> bool {
    matches!(tok.iter().position(|&c| c == b'='), Some(i) if i > 0)
}

/// Scans the run arguments (argv from index 1).
pub fn scan(args: &[OsString]) -> Result<Prelude> {
    let mut nohup = false;
    let mut nice = false;
    let mut last_wrapper: Option<&'static str> = None;
    for (i, tok) in args.iter().enumerate() {
        let b = base(tok);
        if let Some(tool) = Tool::from_base(b) {
            return Ok(Prelude {
                nohup,
                nice,
                tool_index: i,
                tool,
            });
        }
        let bs = b.to_str().unwrap_or("");
        if SHELLS.contains(&bs) {
            msg::diag(&msg::rejecting_shell(tok));
            return Err(Error::line(msg::not_allowed(b)));
        }
        if bs == "nohup" || bs == "nice" {
            if tok.as_bytes().contains(&b'/') {
                resolve::check_wrapper_path(tok).map_err(|l| Error::RefusedWithUsage(vec![l]))?;
            }
            if bs == "nohup" {
                nohup = true;
                last_wrapper = Some("nohup");
            } else {
                nice = true;
                last_wrapper = Some("nice");
            }
            continue;
        }
        if REFUSED_WRAPPERS.contains(&bs) {
            return Err(Error::line(msg::wrapper_refused(tok)));
        }
        if tok.as_bytes().starts_with(b"-") && tok.len() > 1 {
            return Err(match last_wrapper {
                Some(w) => Error::line(msg::wrapper_option_refused(w, tok)),
                None => Error::Usage,
            });
        }
        if is_assignment(tok.as_bytes()) {
            msg::diag(&msg::rejecting_assignment(tok));
            return Err(Error::line(msg::not_allowed(tok)));
        }
        return Err(Error::line(msg::not_allowed(b)));
    }
    Err(Error::Usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(items: &[&str]) -> Vec<OsString> {
        items.iter().map(OsString::from).collect()
    }

    #[test]
    fn accepted_shapes() {
        let p = scan(&a(&["nohup", "wget", "-q"])).unwrap();
        assert_eq!(
            (p.nohup, p.nice, p.tool_index, p.tool),
            (true, false, 1, Tool::Wget)
        );
        let p = scan(&a(&["wget", "wget"])).unwrap();
        assert_eq!(p.tool_index, 0);
        let p = scan(&a(&["nice", "nohup", "/usr/bin/rg", "x", "/c/"])).unwrap();
        assert_eq!((p.nohup, p.nice, p.tool), (true, true, Tool::Rg));
    }

    #[test]
    fn weakness_7_1_c_wrappers_with_options_are_refused() {
        for args in [
            &["time", "-f", "wget", "sh", "-c", "id"][..],
            &["time", "-f", "rg", "sh", "-c", "id", "/victim/"],
            &["timeout", "5", "curl", "http://x/"],
            &["stdbuf", "-o0", "wget"],
            &["chrt", "-p", "1", "wget"],
            &["ionice", "-c3", "wget"],
            &["nice", "-n", "5", "wget"],
            &["nohup", "-x", "5"],
        ] {
            let e = scan(&a(args)).unwrap_err();
            assert!(matches!(e, Error::Refused(_)), "{args:?}: {e:?}");
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(
            scan(&a(&["id"])),
            Err(Error::line(msg::not_allowed(OsStr::new("id"))))
        );
        assert_eq!(
            scan(&a(&["/bin/bash"])),
            Err(Error::line(msg::not_allowed(OsStr::new("bash"))))
        );
        assert_eq!(
            scan(&a(&["env", "wget"])),
            Err(Error::line(msg::not_allowed(OsStr::new("env"))))
        );
        assert_eq!(
            scan(&a(&["http_proxy=x", "wget"])),
            Err(Error::line(msg::not_allowed(OsStr::new("http_proxy=x"))))
        );
        assert_eq!(
            scan(&a(&["wget/"])),
            Err(Error::line(msg::not_allowed(OsStr::new(""))))
        );
        assert_eq!(scan(&a(&["nohup"])), Err(Error::Usage));
        assert!(matches!(
            scan(&a(&["/tmp/nohup", "wget"])),
            Err(Error::RefusedWithUsage(_))
        ));
        assert!(matches!(
            scan(&a(&["/usr/bin/../../tmp/nohup", "wget"])),
            Err(Error::RefusedWithUsage(_))
        ));
    }
}
