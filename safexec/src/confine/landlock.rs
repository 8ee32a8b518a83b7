//! Landlock: per job, a ruleset that lets the tool read only what it needs and write only its
//! own job directory (or, for the purger, the cache root it purges), and, with ABI 4 or
//! later, connect over TCP only to the ports its arguments name.
//!
//! The ruleset is built as root before the privilege drop ([`prepare_landlock`]: it opens the
//! allowed paths and allocates) and enforced after NO_NEW_PRIVS, right before seccomp
//! ([`apply_landlock`]). Where the kernel has no Landlock the job runs without it and the
//! report says so in one line. Any other failure is fatal: a ruleset that was asked for and
//! could not be built must not silently become no ruleset.
#![forbid(unsafe_code)]

use std::ffi::OsStr;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use ::landlock::{
    Access, AccessFs, AccessNet, BitFlags, CompatLevel, Compatible, LandlockStatus, NetPort,
    PathBeneath, PathFd, Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus,
    Scope, ABI,
};

use crate::policy::Tool;
use crate::sys;

/// The newest ABI this code asks for; older kernels get what they support (best effort).
const TARGET_ABI: ABI = ABI::V6;

/// Read (and for binaries and libraries, execute) access: the dynamic loader and system
/// libraries, TLS certificates, the resolver and name-service files, time zones.
const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/lib",
    "/lib64",
    "/lib32",
    "/bin",
    "/sbin",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/ca-certificates.conf",
    "/etc/pki",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/passwd",
    "/etc/group",
    "/etc/localtime",
    "/etc/wgetrc",
    "/dev/urandom",
    "/dev/random",
    "/dev/zero",
];

/// Read and write: the bit bucket tools send output to.
const SYSTEM_WRITE: &[&str] = &["/dev/null"];

/// Ports a fetch tool may always connect to: HTTP, HTTPS (a site's redirect from one to the
/// other) and DNS over TCP (the resolver's fallback for long answers).
const FETCH_PORTS: &[u16] = &[53, 80, 443];

/// What one job needs to reach; the core fills it from the checked job.
#[derive(Debug, Clone)]
pub struct JobAccess<'a> {
    /// The tool.
    pub tool: Tool,
    /// The job's private directory (its cwd): read and write.
    pub job_dir: Option<&'a Path>,
    /// The configured cache root the job works on: read for rg, read and write (delete) for
    /// cache-purge; ignored for other tools.
    pub cache_root: Option<&'a Path>,
    /// cache-purge's key index directory (prepared as root for the job user): read and write
    /// for cache-purge; ignored for other tools.
    pub index_dir: Option<&'a Path>,
    /// The pinned tool binary: read and execute, wherever it is installed.
    pub tool_path: &'a Path,
    /// Further files the job must read, e.g. the `LD_PRELOAD` shim.
    pub extra_read: Vec<&'a Path>,
    /// TCP ports a fetch tool may connect to beyond 53, 80 and 443 (see [`fetch_ports`]).
    pub tcp_ports: Vec<u16>,
}

/// A ruleset built as root, ready to be enforced after the drop.
pub struct LandlockRuleset {
    created: Option<RulesetCreated>,
    allows: Allows,
}

impl std::fmt::Debug for LandlockRuleset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LandlockRuleset")
            .field("allows", &self.allows)
            .finish()
    }
}

/// What a ruleset allows, for the diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allows {
    /// Paths readable (and executable below).
    pub read: Vec<PathBuf>,
    /// Paths readable and writable.
    pub write: Vec<PathBuf>,
    /// TCP ports the job may connect to; empty means none (bind is never allowed).
    pub tcp_connect: Vec<u16>,
}

impl Allows {
    fn line(&self) -> String {
        let list = |v: &[PathBuf]| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let ports = if self.tcp_connect.is_empty() {
            "none".to_string()
        } else {
            self.tcp_connect
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "read {}; write {}; tcp connect {ports}; tcp bind none",
            list(&self.read),
            list(&self.write)
        )
    }
}

/// What enforcing the ruleset did, as `Info:`-style lines for the verbose output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandlockReport {
    /// True when the kernel enforces (fully or partly) the ruleset.
    pub enforced: bool,
    /// The lines to print (without the `Info: ` prefix).
    pub lines: Vec<String>,
}

/// The TCP ports named by the URLs in a fetch tool's arguments (URL operands and proxy
/// settings such as `-e http_proxy=http://127.0.0.1:3434`): an explicit port, or the
/// scheme's default.
pub fn fetch_ports<S: AsRef<OsStr>>(argv: &[S]) -> Vec<u16> {
    let mut ports = Vec::new();
    for arg in argv {
        let bytes = arg.as_ref().as_bytes();
        let text = String::from_utf8_lossy(bytes);
        let mut rest: &str = &text;
        while let Some(i) = rest.find("://") {
            // Bytes, not chars: the byte after the last non-alphanumeric one always starts a
            // char, since the scheme itself is ASCII (the fuzz target found a multi-byte char
            // right before "://").
            let scheme_start = rest.as_bytes()[..i]
                .iter()
                .rposition(|b| !b.is_ascii_alphanumeric())
                .map_or(0, |j| j + 1);
            let scheme = rest[scheme_start..i].to_ascii_lowercase();
            let after = &rest[i + 3..];
            let authority = after.split(['/', '?', '#', ' ', ',']).next().unwrap_or("");
            let hostport = authority.rsplit('@').next().unwrap_or("");
            let explicit = match hostport.rfind(':') {
                // `[v6]` without a port has its last colon inside the brackets.
                Some(c) if !hostport[c..].contains(']') => hostport[c + 1..].parse::<u16>().ok(),
                _ => None,
            };
            let port = explicit.or(match scheme.as_str() {
                "http" => Some(80),
                "https" => Some(443),
                _ => None,
            });
            if let Some(p) = port.filter(|&p| p != 0) {
                if !ports.contains(&p) {
                    ports.push(p);
                }
            }
            rest = after;
        }
    }
    ports
}

enum Rights {
    Read,
    ReadWrite,
}

fn is_fetch(tool: Tool) -> bool {
    matches!(tool, Tool::Wget | Tool::Curl | Tool::CachePreload)
}

/// The paths and ports a tool may reach.
pub fn allows_for(access: &JobAccess<'_>) -> Allows {
    let mut read: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
    read.push(access.tool_path.to_path_buf());
    read.extend(access.extra_read.iter().map(|p| p.to_path_buf()));
    let mut write: Vec<PathBuf> = SYSTEM_WRITE.iter().map(PathBuf::from).collect();
    if let Some(dir) = access.job_dir {
        write.push(dir.to_path_buf());
    }
    match (access.tool, access.cache_root) {
        (Tool::Rg, Some(root)) => read.push(root.to_path_buf()),
        (Tool::CachePurge, Some(root)) => write.push(root.to_path_buf()),
        _ => {}
    }
    if let (Tool::CachePurge, Some(dir)) = (access.tool, access.index_dir) {
        write.push(dir.to_path_buf());
    }
    let mut tcp_connect = Vec::new();
    if is_fetch(access.tool) {
        for &p in FETCH_PORTS.iter().chain(&access.tcp_ports) {
            if !tcp_connect.contains(&p) {
                tcp_connect.push(p);
            }
        }
    }
    Allows {
        read,
        write,
        tcp_connect,
    }
}

/// Builds the job's ruleset (as root, before the drop). Paths that do not exist on this host
/// are left out of the ruleset and the report.
pub fn prepare_landlock(access: &JobAccess<'_>) -> Result<LandlockRuleset, String> {
    let wanted = allows_for(access);
    let fail = |e: &dyn std::fmt::Display| format!("cannot build the landlock ruleset: {e}");
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(TARGET_ABI))
        .map_err(|e| fail(&e))?
        .handle_access(AccessNet::from_all(TARGET_ABI))
        .map_err(|e| fail(&e))?
        .scope(Scope::from_all(TARGET_ABI))
        .map_err(|e| fail(&e))?;
    let mut created = ruleset.create().map_err(|e| fail(&e))?;
    let mut allows = Allows {
        tcp_connect: wanted.tcp_connect.clone(),
        ..Allows::default()
    };
    for (paths, rights) in [
        (&wanted.read, Rights::Read),
        (&wanted.write, Rights::ReadWrite),
    ] {
        for path in paths {
            let Ok(fd) = PathFd::new(path) else {
                continue;
            };
            let is_dir = sys::fstat(fd.as_fd()).is_ok_and(|st| st.is_dir());
            let mut access: BitFlags<AccessFs> = match rights {
                Rights::Read => AccessFs::from_read(TARGET_ABI),
                Rights::ReadWrite => AccessFs::from_all(TARGET_ABI),
            };
            if !is_dir {
                access &= AccessFs::from_file(TARGET_ABI);
            }
            created = created
                .add_rule(PathBeneath::new(fd, access))
                .map_err(|e| fail(&e))?;
            match rights {
                Rights::Read => allows.read.push(path.clone()),
                Rights::ReadWrite => allows.write.push(path.clone()),
            }
        }
    }
    for &port in &wanted.tcp_connect {
        created = created
            .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
            .map_err(|e| fail(&e))?;
    }
    Ok(LandlockRuleset {
        created: Some(created),
        allows,
    })
}

/// Enforces the ruleset on this process (after NO_NEW_PRIVS, before seccomp); the tool
/// inherits it across exec.
pub fn apply_landlock(mut ruleset: LandlockRuleset) -> Result<LandlockReport, String> {
    let created = ruleset
        .created
        .take()
        .ok_or_else(|| "the landlock ruleset was already used".to_string())?;
    let status = created
        .restrict_self()
        .map_err(|e| format!("cannot enforce the landlock ruleset: {e}"))?;
    let abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => Some(effective_abi as i32),
        _ => None,
    };
    let (enforced, what) = match (status.ruleset, abi) {
        (RulesetStatus::NotEnforced, None) => {
            return Ok(LandlockReport {
                enforced: false,
                lines: vec![
                    "landlock is not available on this kernel; the job runs without it".to_string(),
                ],
            })
        }
        (RulesetStatus::NotEnforced, Some(v)) => (false, format!("not enforced (ABI {v})")),
        (RulesetStatus::PartiallyEnforced, Some(v)) => {
            (true, format!("partially enforced (ABI {v})"))
        }
        (_, Some(v)) => (true, format!("enforced (ABI {v})")),
        (_, None) => (true, "enforced".to_string()),
    };
    let mut allows = ruleset.allows.clone();
    if abi.is_some_and(|v| v < 4) {
        // Before ABI 4 the kernel cannot restrict TCP; say so instead of listing ports.
        allows.tcp_connect.clear();
        return Ok(LandlockReport {
            enforced,
            lines: vec![format!(
                "landlock {what}: {}; (tcp not restricted: needs ABI 4)",
                allows.line()
            )],
        });
    }
    Ok(LandlockReport {
        enforced,
        lines: vec![format!("landlock {what}: {}", allows.line())],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(tool: Tool) -> JobAccess<'static> {
        JobAccess {
            tool,
            job_dir: Some(Path::new("/run/safexec-jobs/42")),
            cache_root: Some(Path::new("/var/cache/nginx/site")),
            index_dir: Some(Path::new("/var/lib/cache-purge/www-data")),
            tool_path: Path::new("/usr/bin/tool"),
            extra_read: vec![],
            tcp_ports: vec![3434],
        }
    }

    #[test]
    fn ports_come_from_urls_and_proxy_settings() {
        let argv = [
            "wget",
            "-e",
            "http_proxy=http://127.0.0.1:3434",
            "https://example.com/",
            "http://[::1]:8080/x",
            "http://[::1]/y",
            "http://user:pw@h:81/",
            "not-a-url:99",
            "ftp://h/",
        ];
        assert_eq!(fetch_ports(&argv), [3434, 443, 8080, 80, 81]);
        // Not UTF-8, or a multi-byte char right before the scheme separator.
        assert_eq!(
            fetch_ports(&["\u{fffd}://h:81/", "é://x", "éhttp://h:82"]),
            [81, 82]
        );
    }

    #[test]
    fn fetch_tools_write_only_their_job_dir_and_connect_to_named_ports() {
        let a = allows_for(&access(Tool::Wget));
        assert_eq!(
            a.write,
            [
                PathBuf::from("/dev/null"),
                PathBuf::from("/run/safexec-jobs/42")
            ]
        );
        assert!(!a.read.contains(&PathBuf::from("/var/cache/nginx/site")));
        assert!(a.read.contains(&PathBuf::from("/usr/bin/tool")));
        assert_eq!(a.tcp_connect, [53, 80, 443, 3434]);
    }

    #[test]
    fn rg_reads_the_cache_root_and_connects_nowhere() {
        let a = allows_for(&access(Tool::Rg));
        assert!(a.read.contains(&PathBuf::from("/var/cache/nginx/site")));
        assert!(!a.write.contains(&PathBuf::from("/var/cache/nginx/site")));
        assert!(a.tcp_connect.is_empty());
    }

    #[test]
    fn purge_writes_the_cache_root() {
        let a = allows_for(&access(Tool::CachePurge));
        assert!(a.write.contains(&PathBuf::from("/var/cache/nginx/site")));
        assert!(a
            .write
            .contains(&PathBuf::from("/var/lib/cache-purge/www-data")));
        assert!(a.tcp_connect.is_empty());
        let h = allows_for(&access(Tool::Sha256sum));
        assert!(!h.write.contains(&PathBuf::from("/var/cache/nginx/site")));
        assert!(!h
            .write
            .contains(&PathBuf::from("/var/lib/cache-purge/www-data")));
        let r = allows_for(&access(Tool::Rg));
        assert!(!r
            .write
            .contains(&PathBuf::from("/var/lib/cache-purge/www-data")));
        assert!(!r
            .read
            .contains(&PathBuf::from("/var/lib/cache-purge/www-data")));
        assert!(!h.read.contains(&PathBuf::from("/var/cache/nginx/site")));
    }

    #[test]
    fn no_secret_system_file_is_readable() {
        for p in [
            "/etc/shadow",
            "/etc",
            "/proc",
            "/home",
            "/tmp",
            "/run",
            "/root",
        ] {
            assert!(!SYSTEM_READ.contains(&p), "{p}");
        }
    }
}
