//! Every text safexec prints, in one place, and the non-panicking writers.
//!
//! Diagnostics go to stderr and are silenced by `SAFEXEC_QUIET`; usage goes to stdout and is
//! silenced too; the version block and the kill success line are never silenced (spec §1.5).
//! Writes ignore errors: a closed or full stdout/stderr must never panic a setuid program.
//! Caller-supplied bytes are escaped before they are echoed (no log injection, spec §7.2-13).
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::{AtomicBool, Ordering};

static QUIET: AtomicBool = AtomicBool::new(false);

/// The interface version NPP checks (`safexec -v | awk 'NR==1{print $2}'`).
pub const INTERFACE_VERSION: &str = "1.9.6";

/// Sets quiet mode (from `SAFEXEC_QUIET`).
pub fn set_quiet(q: bool) {
    QUIET.store(q, Ordering::Relaxed);
}

/// Is quiet mode on?
pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

fn write_out(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

fn write_err(bytes: &[u8]) {
    let _ = std::io::stderr().lock().write_all(bytes);
}

/// One diagnostic line on stderr (silenced by quiet).
pub fn diag(line: &str) {
    if !quiet() {
        write_err(format!("{line}\n").as_bytes());
    }
}

/// Escapes caller bytes for echoing: printable UTF-8 stays, anything else becomes `\xNN`.
pub fn esc(s: &OsStr) -> String {
    esc_bytes(s.as_bytes())
}

/// Byte-level form of [`esc`].
pub fn esc_bytes(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                if c == '\\' {
                    out.push_str("\\\\");
                } else {
                    let mut buf = [0u8; 4];
                    for byte in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{byte:02x}"));
                    }
                }
            } else {
                out.push(c);
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out
}

/// The version block (stdout, never silenced).
pub fn print_version() {
    let text = format!(
        "safexec {INTERFACE_VERSION}\nsafexec-rs {}\nUsed by: NPP \u{2013} Nginx Cache Purge Preload for WordPress.\n",
        env!("CARGO_PKG_VERSION")
    );
    write_out(text.as_bytes());
}

/// The usage block (stdout, silenced by quiet); `argv0` is the caller's name for us.
pub fn print_usage(argv0: &OsStr) {
    if quiet() {
        return;
    }
    let name = if argv0.is_empty() {
        "safexec".to_string()
    } else {
        esc(argv0)
    };
    let text = format!(
        "Usage:\n  {name} <program> [args...]\n  {name} --kill=<pid>\n  {name} --help | -h\n  {name} --version | -v\n"
    );
    write_out(text.as_bytes());
}

/// `Success: Killed PID <n>` (stdout, never silenced: PHP greps `Killed PID`).
pub fn print_killed(pid: i32) {
    write_out(format!("Success: Killed PID {pid}\n").as_bytes());
}

// ---- message texts (spec Appendix A, plus the new refusals) ----

/// Tool pinned to a trusted path.
pub fn pinned_tool(tok: &OsStr, path: &str) -> String {
    format!("Info: pinned tool '{}' -> '{path}'", esc(tok))
}
/// A symlink leading outside the trusted directories was skipped.
pub fn symlink_outside(link: &str, target: &str) -> String {
    format!("Info: symlink '{link}' -> '{target}' resolves outside trusted dirs, skipping")
}
/// A candidate failed the ownership/mode checks.
pub fn untrusted_candidate(path: &str, why: &str) -> String {
    format!("Info: untrusted '{path}' ({why}), skipping")
}
/// No trusted path for the tool.
pub fn cannot_resolve(tok: &OsStr) -> String {
    format!("Error: cannot resolve trusted path for '{}'", esc(tok))
}
/// A shell before the tool.
pub fn rejecting_shell(tok: &OsStr) -> String {
    format!(
        "Info: rejecting shell interpreter before tool: '{}'",
        esc(tok)
    )
}
/// `NAME=VALUE` before the tool.
pub fn rejecting_assignment(tok: &OsStr) -> String {
    format!(
        "Info: rejecting dangerous assignment before tool: '{}'",
        esc(tok)
    )
}
/// The tool is not on the allowlist.
pub fn not_allowed(name: &OsStr) -> String {
    format!("Error: '{}' is not allowed by safexec.", esc(name))
}
/// A wrapper that safexec refuses (it forks, preloads or swallows arguments).
pub fn wrapper_refused(tok: &OsStr) -> String {
    format!(
        "Error: wrapper '{}' is not supported by safexec (only nohup, and nice without options, are handled natively).",
        esc(tok)
    )
}
/// Options given to a native wrapper.
pub fn wrapper_option_refused(wrapper: &str, tok: &OsStr) -> String {
    format!(
        "Error: option '{}' for wrapper '{wrapper}' is not supported by safexec.",
        esc(tok)
    )
}
/// Explicit wrapper path outside the trusted directories.
pub fn wrapper_outside(tok: &OsStr) -> String {
    format!(
        "Error: wrapper path '{}' is outside trusted directories",
        esc(tok)
    )
}
/// Explicit wrapper path failing the trust walk.
pub fn wrapper_untrusted(tok: &OsStr) -> String {
    format!("Error: wrapper path '{}' failed trust validation", esc(tok))
}
/// nohup handled natively.
pub fn nohup_native() -> String {
    "Info: nohup handled natively (SIGHUP ignored, same PID)".to_string()
}
/// A refused tool option.
pub fn option_refused(tool: &str, opt: &OsStr) -> String {
    format!(
        "Error: option '{}' is not allowed for {tool} by safexec.",
        esc(opt)
    )
}
/// A refused value of an allowed option.
pub fn value_refused(tool: &str, opt: &str, value: &OsStr, why: &str) -> String {
    format!(
        "Error: {tool} {opt} '{}' is not allowed by safexec ({why}).",
        esc(value)
    )
}
/// An option that needs a value at the end of argv.
pub fn missing_value(tool: &str, opt: &OsStr) -> String {
    format!("Error: {tool} option '{}' needs a value.", esc(opt))
}
/// A refused operand.
pub fn operand_refused(tool: &str, operand: &OsStr, why: &str) -> String {
    format!(
        "Error: {tool} argument '{}' is not allowed by safexec ({why}).",
        esc(operand)
    )
}
/// Pass-through banner, line 1.
pub fn passthrough_mode(euid: u32) -> String {
    format!("Info: safexec: Pass-Through Mode (euid={euid})")
}
/// Pass-through banner, line 2.
pub fn passthrough_starting(path: &str) -> String {
    format!("Info: safexec: Starting '{path}' as original user")
}
/// Pass-through banner, line 3.
pub fn passthrough_note(argv0: &OsStr) -> String {
    let a = esc(argv0);
    format!("Note: To enable hardening: chown root:root {a} && chmod 4755 {a} (avoid nosuid)")
}
/// execveat failed.
pub fn exec_failed(err: &std::io::Error) -> String {
    format!("safexec: execveat: {err}")
}
/// rg: the path is under a cache root and is switched to its configured owner.
pub fn rg_dropping(path: &OsStr, owner: &str, uid: u32) -> String {
    format!(
        "Info: safexec: '{}' is under a configured cache root; dropping to '{owner}' (uid={uid})",
        esc(path)
    )
}
/// rg: owner is the caller.
pub fn rg_owner_is_caller(uid: u32) -> String {
    format!("Info: safexec: path owner matches caller (uid={uid}); skipping drop")
}
/// rg: not under any cache root.
pub fn rg_not_cache_root(path: &OsStr, uid: u32) -> String {
    format!(
        "Info: safexec: '{}' is not under a configured cache root; running rg as the caller (uid={uid})",
        esc(path)
    )
}
/// rg: path under a cache root but not a plain directory chain.
pub fn rg_bad_path(path: &OsStr) -> String {
    format!(
        "Error: safexec: '{}' is not a plain directory (symlink, missing or not a directory); refusing exec",
        esc(path)
    )
}
/// rg: generic refusal.
pub fn rg_refusing() -> String {
    "Error: safexec: root-owned or invalid path; refusing exec".to_string()
}
/// rg: configured owner missing from passwd.
pub fn user_not_in_passwd(name: &str) -> String {
    format!("Error: safexec: user '{name}' not in passwd; refusing exec")
}
/// The job user is missing.
pub fn job_user_missing(name: &str) -> String {
    format!("Warning: '{name}' user not found, continuing as original user")
}
/// The drop failed or would leave root.
pub fn fatal_root() -> String {
    "Fatal: safexec cannot be used as root; refusing to exec (privilege drop failed).".to_string()
}
/// A privilege step failed.
pub fn drop_step_failed(step: &str, err: &str) -> String {
    format!("Fatal: privilege drop failed at {step}: {err}; refusing to exec")
}
/// cwd switched.
pub fn cwd_switch() -> String {
    "Info: CWD not accessible; switching to /tmp".to_string()
}
/// cwd switch failed.
pub fn cwd_failed(err: &std::io::Error) -> String {
    format!("Warning: failed to chdir to /tmp and /: {err}")
}
/// wget -P rewrite.
pub fn rewriting_p(from: &OsStr, to: &str) -> String {
    format!("Info: Rewriting wget -P '{}' -> '{to}'", esc(from))
}
/// The job's private directory could not be set up: the job is refused (no fallback).
pub fn job_dir_failed(why: &str) -> String {
    format!("Fatal: cannot create the job's private directory ({why}); refusing to exec")
}
/// class 7: this caller's jobs run as its mapped user.
pub fn caller_job_user(caller: &str, user: &str, uid: u32) -> String {
    format!("Info: safexec: jobs of '{caller}' run as '{user}' (uid={uid}, caller_job_user)")
}
/// class 7: the mapped job user does not exist.
pub fn mapped_job_user_missing(user: &str) -> String {
    format!("Error: safexec: caller_job_user '{user}' is not in /etc/passwd; refusing exec")
}
/// class 8: a cache root the caller is not bound to.
pub fn root_not_allowed(root: &std::path::Path, caller: &str, uid: u32) -> String {
    format!(
        "Error: safexec: cache_root '{}' does not allow this caller ('{caller}', uid={uid}; see allow= in /etc/safexec.conf); refusing exec",
        esc(root.as_os_str())
    )
}
/// class 4: a cache root whose path is unsafe.
pub fn root_refused(root: &std::path::Path, why: &str) -> String {
    format!(
        "Error: safexec: ignoring cache_root '{}': {why}; refusing exec",
        esc(root.as_os_str())
    )
}
/// `-v`: a cache root without `allow=`.
pub fn root_without_allow(root: &std::path::Path) -> String {
    format!(
        "Warning: cache_root '{}' has no allow=: only root may use it",
        esc(root.as_os_str())
    )
}
/// `-v`: a cache root that will be refused.
pub fn root_unusable(root: &std::path::Path, why: &str) -> String {
    format!(
        "Warning: cache_root '{}' will be refused: {why}",
        esc(root.as_os_str())
    )
}
/// `-v`: a caller_job_user whose job user is missing.
pub fn mapped_job_user_missing_warning(caller: &str, user: &str) -> String {
    format!("Warning: caller_job_user {caller} {user}: '{user}' is not in /etc/passwd; {caller}'s jobs will be refused")
}
/// class 4: the tool starts in the checked directory with a relative path.
pub fn started_in_checked_dir(tool: &str, path: &OsStr) -> String {
    format!(
        "Info: safexec: {tool} runs in the checked directory '{}' and is given '.'",
        esc(path)
    )
}
/// cache-purge: no root for this caller.
pub fn purge_no_root(caller: &str, uid: u32) -> String {
    format!("Error: safexec: no cache_root in /etc/safexec.conf allows '{caller}' (uid={uid}); refusing cache-purge")
}
/// cache-purge: the root chosen.
pub fn purge_root(root: &std::path::Path, owner: &str, uid: u32) -> String {
    format!(
        "Info: safexec: cache-purge on cache_root '{}' as '{owner}' (uid={uid})",
        esc(root.as_os_str())
    )
}
/// cache-purge: the key index directory handed to the job.
pub fn purge_index_dir(dir: &std::path::Path) -> String {
    format!(
        "Info: safexec: cache-purge key index in '{}'",
        esc(dir.as_os_str())
    )
}
/// cache-purge: no key index directory could be prepared; the purge runs without one.
pub fn purge_no_index(why: &str) -> String {
    format!("Info: safexec: cache-purge runs without a key index ({why}); it scans where needed")
}
/// cache-purge: `--cache-path` is not one of the caller's roots.
pub fn purge_path_not_allowed(path: &OsStr) -> String {
    format!(
        "Error: safexec: cache-purge --cache-path '{}' is not one of your configured cache roots; refusing exec",
        esc(path)
    )
}
/// cache-purge: several roots and nothing to choose by.
pub fn purge_several_roots() -> String {
    "Error: safexec: you have several cache roots; name one with --cache-path; refusing exec"
        .to_string()
}
/// cache-purge: no (single) root lists the URL's host.
pub fn purge_no_root_for_url(url: &OsStr) -> String {
    format!(
        "Error: safexec: no single one of your cache roots lists the host of '{}' in url=; name one with --cache-path; refusing exec",
        esc(url)
    )
}
/// cache-purge: URLs of different roots in one call.
pub fn purge_urls_span_roots() -> String {
    "Error: safexec: the URLs belong to different cache roots; purge each root separately; refusing exec"
        .to_string()
}
/// class 1: only one input file can be handed over.
pub fn one_input_file(tool: &str, second: &OsStr) -> String {
    format!(
        "Error: {tool}: only one input file can be passed through safexec (second: '{}')",
        esc(second)
    )
}
/// class 1: the caller cannot open its input file.
pub fn input_file_refused(tool: &str, path: &OsStr, e: &std::io::Error) -> String {
    format!(
        "Error: {tool}: cannot open '{}' as the caller: {e}; refusing exec",
        esc(path)
    )
}
/// class 1: the input file was opened as the caller and is the tool's stdin.
pub fn input_file_handed(path: &OsStr) -> String {
    format!(
        "Info: safexec: '{}' opened as the caller and passed as stdin ('-')",
        esc(path)
    )
}
/// Shim injected.
pub fn injected(so: &str, case: &str, prog: &str) -> String {
    format!("Info: Injected: LD_PRELOAD={so} PCTNORM_CASE={case} (prog={prog})")
}
/// Shim refused.
pub fn not_injecting(so: &OsStr) -> String {
    format!(
        "Info: Not injecting LD_PRELOAD shim (unsafe or missing so: {})",
        esc(so)
    )
}
/// Shim disabled.
pub fn shim_disabled() -> String {
    "Info: LD_PRELOAD shim disabled via SAFEXEC_PCTNORM=0".to_string()
}
/// Shim not applicable.
pub fn shim_not_applicable(prog: &str) -> String {
    format!("Info: LD_PRELOAD shim not applicable (prog={prog})")
}
/// PCTNORM_CASE exported to the crawler.
pub fn pctnorm_case_exported(case: &str, prog: &str) -> String {
    format!("Info: Exported: PCTNORM_CASE={case} (prog={prog}; no LD_PRELOAD)")
}
/// Invalid SAFEXEC_PCTNORM_CASE.
pub fn bad_pctnorm_case(v: &OsStr) -> String {
    format!(
        "Error: SAFEXEC_PCTNORM_CASE must be upper, lower or off (got '{}')",
        esc(v)
    )
}
/// Config warning.
pub fn config_warning(e: &str) -> String {
    format!("Warning: {e}; using the built-in defaults")
}
/// Confinement failure.
pub fn confine_failed(step: &str, e: &str) -> String {
    format!("Fatal: {step} failed: {e}; refusing to exec")
}
/// Job record failure.
pub fn job_record_failed(e: &std::io::Error) -> String {
    format!("Fatal: cannot write the job record under /run/safexec: {e}; refusing to exec")
}
/// Summary: identity.
pub fn summary_user(uid: u32, gid: u32, ruid: u32, rgid: u32, cwd: &str, tool: &str) -> String {
    format!("Summary: user={uid}:{gid} (ruid={ruid} rgid={rgid}) cwd={cwd} tool={tool}")
}
/// Summary: NNP.
pub fn summary_nnp(on: bool) -> String {
    format!("Summary: no_new_privs={}", if on { "on" } else { "off" })
}
/// Summary: cgroup (the confinement renders the value).
pub fn summary_cgroup(value: &str) -> String {
    format!("Summary: cgroup={value}")
}
/// An informational note from the confinement.
pub fn info(note: &str) -> String {
    format!("Info: {note}")
}
/// The configuration file is trusted but invalid.
pub fn config_error(e: &str) -> String {
    format!("Error: {e}; refusing to exec")
}
/// Kill: bad pid.
pub fn invalid_pid(raw: &OsStr) -> String {
    format!("Error: Invalid PID '{}'", esc(raw))
}
/// Kill: the one refusal text for every non-job case (reveals nothing about other processes).
pub fn kill_refused(pid: i32) -> String {
    format!("Error: PID {pid} does not exist, already exited, or is not a safexec job you may stop")
}
/// Kill: pass-through signalling failed.
pub fn kill_failed(err: &std::io::Error) -> String {
    format!("pidfd_send_signal(SIGTERM): {err}")
}
/// Standard fds could not be made safe.
pub fn std_fds_failed() -> String {
    "Fatal: cannot reopen closed standard descriptors on /dev/null".to_string()
}
/// Entry hardening failed.
pub fn entry_failed(what: &str, e: &std::io::Error) -> String {
    format!("Fatal: {what} failed: {e}; refusing to run")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_backslash_and_invalid_utf8() {
        assert_eq!(esc_bytes(b"a\nb\x1b[31m"), "a\\x0ab\\x1b[31m");
        assert_eq!(esc_bytes(b"\xff\xfeok"), "\\xff\\xfeok");
        assert_eq!(esc_bytes("d\u{e9}j\u{e0}".as_bytes()), "d\u{e9}j\u{e0}");
        assert_eq!(esc_bytes(b"a\\b"), "a\\\\b");
    }
}
