//! The caller's environment: a snapshot of the `SAFEXEC_*` knobs, and the tool's envp, built
//! from scratch.
//!
//! Nothing else is read from the caller's environment and the process environment is never
//! modified (no `set_var`): the tool gets exactly [`tool_env`] plus what the shim decision adds.
#![forbid(unsafe_code)]

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

/// Fixed PATH handed to the tool (the C version's value).
pub const TOOL_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `SAFEXEC_SAFE_CWD` as the C version reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SafeCwd {
    /// `1`: leave a cwd the job cannot write.
    On,
    /// `0`: never change the cwd.
    Off,
    /// Default: like `On`, but only when fd 0, 1 or 2 is a terminal.
    IfTty,
}

/// The `SAFEXEC_*` variables, read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// `SAFEXEC_QUIET` (default off).
    pub quiet: bool,
    /// `SAFEXEC_SAFE_CWD`.
    pub safe_cwd: SafeCwd,
    /// `SAFEXEC_DETACH`, raw: the confinement decides (in setuid mode only stricter modes count).
    pub detach: Option<OsString>,
    /// `SAFEXEC_PCTNORM` (default on).
    pub pctnorm: bool,
    /// `SAFEXEC_PCTNORM_CASE`, raw (validated where it is used).
    pub pctnorm_case: Option<OsString>,
    /// `SAFEXEC_PCTNORM_SO`, raw (an empty value is not "unset").
    pub pctnorm_so: Option<OsString>,
}

/// The C `env_flag`: `1/true/yes/on` → Some(true), `0/false/no/off` → Some(false), words
/// case-insensitive, digits exact; anything else (including empty) → None (the default).
pub fn env_flag(v: Option<&OsStr>) -> Option<bool> {
    let v = v?.as_bytes().to_ascii_lowercase();
    match v.as_slice() {
        b"1" | b"true" | b"yes" | b"on" => Some(true),
        b"0" | b"false" | b"no" | b"off" => Some(false),
        _ => None,
    }
}

impl Snapshot {
    /// Builds the snapshot from a lookup function (the real one reads the process environment).
    pub fn from_lookup(get: impl Fn(&str) -> Option<OsString>) -> Self {
        Snapshot {
            quiet: env_flag(get("SAFEXEC_QUIET").as_deref()).unwrap_or(false),
            safe_cwd: match env_flag(get("SAFEXEC_SAFE_CWD").as_deref()) {
                Some(true) => SafeCwd::On,
                Some(false) => SafeCwd::Off,
                None => SafeCwd::IfTty,
            },
            detach: get("SAFEXEC_DETACH"),
            pctnorm: env_flag(get("SAFEXEC_PCTNORM").as_deref()).unwrap_or(true),
            pctnorm_case: get("SAFEXEC_PCTNORM_CASE"),
            pctnorm_so: get("SAFEXEC_PCTNORM_SO"),
        }
    }

    /// Reads the process environment (only these six names).
    pub fn capture() -> Self {
        Self::from_lookup(|k| std::env::var_os(k))
    }
}

/// One `NAME=value` entry.
pub fn entry(name: &str, value: &OsStr) -> CString {
    let mut v = Vec::with_capacity(name.len() + 1 + value.len());
    v.extend_from_slice(name.as_bytes());
    v.push(b'=');
    v.extend(value.as_bytes().iter().copied().filter(|&b| b != 0));
    CString::new(v).unwrap_or_default()
}

/// The tool's base environment: PATH fixed, a UTF-8 C locale, nothing from the caller.
pub fn tool_env() -> Vec<CString> {
    vec![
        entry("PATH", OsStr::new(TOOL_PATH)),
        entry("LANG", OsStr::new("C.UTF-8")),
        entry("LC_CTYPE", OsStr::new("C.UTF-8")),
        entry("CHARSET", OsStr::new("UTF-8")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_flag_matches_c() {
        for (v, want) in [
            ("1", Some(true)),
            ("TRUE", Some(true)),
            ("Yes", Some(true)),
            ("on", Some(true)),
            ("0", Some(false)),
            ("off", Some(false)),
            ("No", Some(false)),
            ("", None),
            ("-1", None),
            ("2", None),
            ("01", None),
        ] {
            assert_eq!(env_flag(Some(OsStr::new(v))), want, "{v:?}");
        }
        assert_eq!(env_flag(None), None);
    }

    #[test]
    fn snapshot_defaults_and_values() {
        let s = Snapshot::from_lookup(|_| None);
        assert!(!s.quiet && s.pctnorm);
        assert_eq!(s.safe_cwd, SafeCwd::IfTty);
        let s = Snapshot::from_lookup(|k| match k {
            "SAFEXEC_QUIET" => Some("1".into()),
            "SAFEXEC_SAFE_CWD" => Some("0".into()),
            "SAFEXEC_PCTNORM" => Some("off".into()),
            "SAFEXEC_PCTNORM_SO" => Some("".into()),
            _ => None,
        });
        assert!(s.quiet && !s.pctnorm);
        assert_eq!(s.safe_cwd, SafeCwd::Off);
        assert_eq!(s.pctnorm_so, Some(OsString::new()));
    }

    #[test]
    fn tool_env_is_fixed() {
        let e: Vec<String> = tool_env()
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        assert_eq!(e[0], format!("PATH={TOOL_PATH}"));
        assert_eq!(e.len(), 4);
    }
}
