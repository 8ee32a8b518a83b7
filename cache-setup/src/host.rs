//! Checks of the machine itself: the setuid safexec binary, its mount, the cgroup layout and
//! Landlock. Every path is a parameter, so tests point them at files they wrote.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where the host checks look.
#[derive(Debug, Clone)]
pub struct HostPaths {
    /// The safexec binary; None tries /usr/bin/safexec, then /usr/local/bin/safexec.
    pub safexec: Option<PathBuf>,
    /// The mount table (`/proc/self/mountinfo`).
    pub mountinfo: PathBuf,
    /// A Landlock ABI version to assume instead of asking the kernel (tests).
    pub landlock_abi: Option<i32>,
}

impl Default for HostPaths {
    fn default() -> HostPaths {
        HostPaths {
            safexec: None,
            mountinfo: PathBuf::from("/proc/self/mountinfo"),
            landlock_abi: None,
        }
    }
}

/// One mount of the mount table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Where it is mounted.
    pub point: PathBuf,
    /// Per-mount options (`rw,nosuid,...`).
    pub options: Vec<String>,
    /// File system type.
    pub fstype: String,
    /// Super-block options (for cgroup v1: the controllers).
    pub super_options: Vec<String>,
}

/// Parses `/proc/self/mountinfo` text; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for l in text.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.len() < 6 || sep + 3 > f.len() {
            continue;
        }
        out.push(Mount {
            point: PathBuf::from(unescape_octal(f[4])),
            options: f[5].split(',').map(str::to_string).collect(),
            fstype: f[sep + 1].to_string(),
            super_options: f
                .get(sep + 3)
                .map(|s| s.split(',').map(str::to_string).collect())
                .unwrap_or_default(),
        });
    }
    out
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The mount a path lives on: the last-listed mount whose point is the longest prefix.
pub fn mount_of<'a>(mounts: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    let mut best: Option<&Mount> = None;
    for m in mounts {
        if path.starts_with(&m.point)
            && best.is_none_or(|b| m.point.components().count() >= b.point.components().count())
        {
            best = Some(m);
        }
    }
    best
}

/// Whether safexec is installed, setuid root, and on a mount that honours setuid.
pub fn check_safexec(paths: &HostPaths, mounts: &[Mount]) -> Vec<Check> {
    let candidates: Vec<PathBuf> = match &paths.safexec {
        Some(p) => vec![p.clone()],
        None => vec!["/usr/bin/safexec".into(), "/usr/local/bin/safexec".into()],
    };
    let Some(bin) = candidates.iter().find(|p| p.exists()) else {
        return vec![Check::trap(
            "safexec-missing",
            candidates[0].display().to_string(),
            format!(
                "safexec is not installed ({} not found): PHP cannot purge or preload as the cache owner",
                candidates.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
            "install the safexec package (dpkg -i safexec_*.deb), which installs /usr/bin/safexec root:root 4755",
        )];
    };
    let shown = bin.display().to_string();
    let mut out = Vec::new();
    let md = match fs::metadata(bin) {
        Ok(md) => md,
        Err(e) => {
            return vec![Check::trap(
                "safexec-missing",
                shown,
                format!("cannot stat safexec: {e}"),
                "reinstall the safexec package",
            )]
        }
    };
    if md.uid() != 0 || md.mode() & 0o4000 == 0 {
        out.push(Check::trap(
            "safexec-not-setuid",
            shown.clone(),
            format!(
                "safexec is owned by uid {} with mode {:04o}: without setuid root it runs as the PHP user and cannot switch to the cache owner",
                md.uid(),
                md.mode() & 0o7777
            ),
            format!("chown root:root {shown} && chmod 4755 {shown}"),
        ));
    }
    let real = fs::canonicalize(bin).unwrap_or_else(|_| bin.clone());
    match mount_of(mounts, &real) {
        Some(m) if m.options.iter().any(|o| o == "nosuid") => out.push(Check::trap(
            "safexec-nosuid-mount",
            shown.clone(),
            format!(
                "{} is on {}, mounted nosuid: the kernel ignores the setuid bit there",
                real.display(),
                m.point.display()
            ),
            format!(
                "install safexec on a file system mounted without nosuid (/usr/bin), or remount {} without nosuid",
                m.point.display()
            ),
        )),
        _ => {}
    }
    if out.is_empty() {
        out.push(Check::ok(
            "safexec",
            shown,
            "setuid root, on a mount that honours setuid",
        ));
    }
    out
}

/// The cgroup hierarchies and whether the memory and pids controllers (safexec's
/// `memory_max` and `pids_max`) are available on one of them.
pub fn check_cgroups(mounts: &[Mount]) -> Check {
    let v2: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "cgroup2").collect();
    let v1: Vec<&Mount> = mounts.iter().filter(|m| m.fstype == "cgroup").collect();
    let mut controllers: Vec<String> = Vec::new();
    for m in &v1 {
        controllers.extend(m.super_options.iter().cloned());
    }
    for m in &v2 {
        if let Ok(t) = fs::read_to_string(m.point.join("cgroup.controllers")) {
            controllers.extend(t.split_whitespace().map(str::to_string));
        }
    }
    let layout = match (v2.is_empty(), v1.is_empty()) {
        (false, true) => "unified (cgroup v2)",
        (false, false) => "hybrid (cgroup v1 controllers + a v2 tree)",
        (true, false) => "legacy (cgroup v1)",
        (true, true) => "none mounted",
    };
    let missing: Vec<&str> = ["memory", "pids"]
        .into_iter()
        .filter(|c| !controllers.iter().any(|have| have == c))
        .collect();
    if missing.is_empty() {
        Check::ok("cgroups", layout, "memory and pids controllers available")
    } else {
        Check::trap(
            "cgroup-controllers",
            layout,
            format!(
                "cgroup layout {layout}: no {} controller, so safexec cannot hold jobs to memory_max/pids_max",
                missing.join(" or ")
            ),
            "mount the unified hierarchy (systemd.unified_cgroup_hierarchy=1 on the kernel command line) or the missing v1 controllers",
        )
    }
}

/// Landlock: the ABI version the kernel offers (asked through the landlock crate).
pub fn check_landlock(paths: &HostPaths) -> Check {
    let abi = paths.landlock_abi.unwrap_or_else(kernel_landlock_abi);
    if abi >= 1 {
        Check::ok("landlock", format!("ABI {abi}"), "available")
    } else {
        Check::trap(
            "landlock-unavailable",
            "kernel",
            "the kernel offers no Landlock: safexec's file-system confinement of jobs is off",
            "boot a kernel with CONFIG_SECURITY_LANDLOCK=y and landlock in lsm= (Linux 5.13 or later)",
        )
    }
}

/// Asks the kernel for its Landlock ABI without restricting anything: a `RestrictSelf` with no
/// flags and no `no_new_privs` only probes.
fn kernel_landlock_abi() -> i32 {
    use landlock::{LandlockStatus, RestrictSelf};
    match RestrictSelf::default().no_new_privs(false).apply() {
        Ok(status) => match status.landlock {
            LandlockStatus::Available {
                effective_abi,
                kernel_abi,
            } => kernel_abi.unwrap_or(effective_abi as i32),
            _ => 0,
        },
        Err(_) => 0,
    }
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// Stable identifier (`vary-honoured`, `safexec-not-setuid`, ... or `ok` checks' names).
    pub id: String,
    /// Whether this is a problem.
    pub trap: bool,
    /// What was checked (a site, a path, a pool).
    pub subject: String,
    /// `file:line` the problem is written at, if any.
    pub place: Option<String>,
    /// What is wrong (or what was found).
    pub message: String,
    /// The concrete fix (empty when fine).
    pub fix: String,
}

impl Check {
    /// A problem.
    pub fn trap(
        id: &str,
        subject: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            id: id.to_string(),
            trap: true,
            subject: subject.into(),
            place: None,
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// A passed check.
    pub fn ok(id: &str, subject: impl Into<String>, message: impl Into<String>) -> Check {
        Check {
            id: id.to_string(),
            trap: false,
            subject: subject.into(),
            place: None,
            message: message.into(),
            fix: String::new(),
        }
    }

    /// Adds the place.
    pub fn at(mut self, place: impl Into<String>) -> Check {
        self.place = Some(place.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MI: &str = "22 27 0:21 / /proc rw,relatime - proc proc rw\n\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
40 27 0:40 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw\n\
41 27 0:41 / /opt/my\\040apps rw,nosuid - ext4 /dev/vdb rw\n\
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n";

    #[test]
    fn mountinfo_and_longest_prefix() {
        let m = parse_mountinfo(MI);
        assert_eq!(m.len(), 5);
        assert_eq!(m[3].point, Path::new("/opt/my apps"));
        assert_eq!(
            mount_of(&m, Path::new("/tmp/x/safexec")).unwrap().point,
            Path::new("/tmp")
        );
        assert_eq!(
            mount_of(&m, Path::new("/usr/bin/safexec")).unwrap().point,
            Path::new("/")
        );
        assert_eq!(
            mount_of(&m, Path::new("/tmpx/safexec")).unwrap().point,
            Path::new("/")
        );
    }

    #[test]
    fn cgroups_need_memory_and_pids() {
        let c = check_cgroups(&parse_mountinfo(MI));
        assert!(c.trap);
        assert!(c.message.contains("no pids controller"), "{c:?}");
        let mi = format!("{MI}39 31 0:36 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n");
        let c = check_cgroups(&parse_mountinfo(&mi));
        assert!(!c.trap, "{c:?}");
        assert_eq!(c.subject, "legacy (cgroup v1)");
    }

    #[test]
    fn landlock_probe_restricts_nothing() {
        let abi = kernel_landlock_abi();
        assert!(abi >= 0);
        // The probe neither sets no_new_privs nor confines: files outside any rule still open.
        let status = fs::read_to_string("/proc/self/status").unwrap();
        assert!(status.contains("NoNewPrivs:\t0"), "{status}");
        assert!(fs::read_dir("/").is_ok());
    }

    #[test]
    fn landlock_override() {
        let p = HostPaths {
            landlock_abi: Some(0),
            ..HostPaths::default()
        };
        assert!(check_landlock(&p).trap);
        let p = HostPaths {
            landlock_abi: Some(4),
            ..HostPaths::default()
        };
        assert_eq!(check_landlock(&p).subject, "ABI 4");
    }
}
