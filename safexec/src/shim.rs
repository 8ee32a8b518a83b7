//! The percent-encoding normaliser: `LD_PRELOAD` shim for wget/curl, `PCTNORM_CASE` for the
//! crawler. Decided after the drop, as the job user.
//!
//! In setuid mode only the compiled-in candidate [`DEFAULT_SO`] can be injected:
//! `SAFEXEC_PCTNORM_SO` may name it (or a path that resolves to the same file), and the path is
//! walked with the trust rules (every hop root-owned, not group/other-writable), the file must
//! be a root-owned regular `libnpp_norm.so` under a system library directory, and the
//! **canonical** path is what gets exported, never the caller's string (spec §7.1-G). Paths
//! containing whitespace or `:` (ld.so list separators) are refused outright.
#![forbid(unsafe_code)]

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::env::{entry, Snapshot};
use crate::msg;
use crate::policy::Tool;
use crate::resolve;

/// The compiled-in shim path.
pub const DEFAULT_SO: &str = "/usr/lib/npp/libnpp_norm.so";

const LIB_DIRS: [&str; 4] = ["/usr/lib", "/lib", "/usr/lib64", "/lib64"];

/// Extra environment for the tool and the lines to print.
#[derive(Debug, Default)]
pub struct Decision {
    /// `NAME=value` entries to add to the tool's environment.
    pub env: Vec<CString>,
    /// Info lines.
    pub lines: Vec<String>,
}

/// Validates `SAFEXEC_PCTNORM_CASE`: `None` (unset or empty) or one of upper/lower/off.
pub fn case_value(snap: &Snapshot) -> Result<Option<&'static str>, String> {
    match snap.pctnorm_case.as_deref().map(OsStr::as_bytes) {
        None | Some(b"") => Ok(None),
        Some(b"upper") => Ok(Some("upper")),
        Some(b"lower") => Ok(Some("lower")),
        Some(b"off") => Ok(Some("off")),
        Some(_) => Err(msg::bad_pctnorm_case(
            snap.pctnorm_case.as_deref().unwrap_or_default(),
        )),
    }
}

/// The canonical path of a valid shim, or `None`.
pub fn validate_so(so: &OsStr) -> Option<String> {
    let b = so.as_bytes();
    if b.is_empty()
        || b.iter()
            .any(|&c| c.is_ascii_whitespace() || c == b':' || c < 0x20)
    {
        return None;
    }
    let w = resolve::walk(Path::new(so), true, true).ok()?;
    let default = resolve::walk(Path::new(DEFAULT_SO), true, true).ok()?;
    if w.canonical != default.canonical {
        return None;
    }
    let st = w.stat;
    if !st.is_file() || st.uid != 0 || st.gid != 0 || st.mode & 0o022 != 0 {
        return None;
    }
    if w.canonical.file_name() != Some(OsStr::new("libnpp_norm.so"))
        || !LIB_DIRS.iter().any(|d| w.canonical.starts_with(d))
    {
        return None;
    }
    let s = w.canonical.to_str()?.to_string();
    (!s.bytes().any(|c| c.is_ascii_whitespace() || c == b':')).then_some(s)
}

/// Decides the shim for `tool`.
pub fn decide(snap: &Snapshot, tool: Tool) -> Result<Decision, String> {
    let mut d = Decision::default();
    let prog = tool.name();
    match tool {
        Tool::Wget | Tool::Curl => {
            if !snap.pctnorm {
                d.lines.push(msg::shim_disabled());
                return Ok(d);
            }
            let case = case_value(snap)?.unwrap_or("upper");
            let so = snap.pctnorm_so.clone().unwrap_or_else(|| DEFAULT_SO.into());
            match validate_so(&so) {
                Some(canonical) => {
                    d.env.push(entry("LD_PRELOAD", OsStr::new(&canonical)));
                    d.env.push(entry("PCTNORM_CASE", OsStr::new(case)));
                    d.lines.push(msg::injected(&canonical, case, prog));
                }
                None => d.lines.push(msg::not_injecting(&so)),
            }
        }
        Tool::CachePreload => {
            // The crawler normalises natively: never preload into it; pass the mode only when
            // the caller chose one explicitly (NPP's `off` is the crawler's `preserve`).
            d.lines.push(msg::shim_not_applicable(prog));
            if snap.pctnorm {
                if let Some(case) = case_value(snap)? {
                    let mode = if case == "off" { "preserve" } else { case };
                    d.env.push(entry("PCTNORM_CASE", OsStr::new(mode)));
                    d.lines.push(msg::pctnorm_case_exported(mode, prog));
                }
            }
        }
        Tool::Rg | Tool::Sha256sum | Tool::CachePurge => {
            d.lines.push(msg::shim_not_applicable(prog))
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn snap(case: Option<&str>, so: Option<&str>, on: bool) -> Snapshot {
        let mut s = Snapshot::from_lookup(|_| None);
        s.pctnorm_case = case.map(OsString::from);
        s.pctnorm_so = so.map(OsString::from);
        s.pctnorm = on;
        s
    }

    #[test]
    fn case_is_validated() {
        assert_eq!(case_value(&snap(None, None, true)), Ok(None));
        assert_eq!(case_value(&snap(Some(""), None, true)), Ok(None));
        assert_eq!(
            case_value(&snap(Some("lower"), None, true)),
            Ok(Some("lower"))
        );
        assert!(case_value(&snap(Some("lower;rm"), None, true)).is_err());
        assert!(case_value(&snap(Some("UPPER"), None, true)).is_err());
    }

    #[test]
    fn hostile_so_paths_are_refused() {
        for so in [
            "",
            "/tmp/a b/libnpp_norm.so",
            "/usr/lib/x:/tmp/evil.so",
            "/tmp/libnpp_norm.so",
            "relative.so",
        ] {
            assert_eq!(validate_so(OsStr::new(so)), None, "{so:?}");
        }
    }

    #[test]
    fn crawler_gets_case_but_never_preload() {
        let d = decide(&snap(Some("off"), None, true), Tool::CachePreload).unwrap();
        let env: Vec<String> = d
            .env
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect();
        assert_eq!(env, vec!["PCTNORM_CASE=preserve".to_string()]);
        let d = decide(&snap(None, None, true), Tool::CachePreload).unwrap();
        assert!(d.env.is_empty());
        let d = decide(&snap(Some("upper"), None, false), Tool::CachePreload).unwrap();
        assert!(d.env.is_empty());
        let d = decide(&snap(None, None, false), Tool::Wget).unwrap();
        assert_eq!(d.lines, vec![msg::shim_disabled()]);
    }
}
