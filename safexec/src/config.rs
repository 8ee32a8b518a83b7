//! `/etc/safexec.conf`: the root-owned configuration file.
//!
//! INTERFACE CONTRACT (shared by the core and confinement work; keep the names):
//! the core wrapper calls [`load`] once, as root, before any privilege change, and reads
//! [`Config::cache_roots`] for the owner-based identity switch and [`Config::job_user`] for
//! the default drop target; the confinement code reads the limits.
//!
//! # Format
//!
//! One `key = value` per line. Blank lines and lines whose first non-blank character is `#`
//! are ignored; there are no trailing comments (a `#` inside a value is part of the value).
//! Spaces around the key and the value are trimmed. Every key except `cache_root` may appear
//! once. An unknown key or a malformed line is an error that names the line.
//!
//! | key | value | default |
//! |---|---|---|
//! | `cgroup_parent` | relative cgroup path, components of `A-Za-z0-9._-` | `nppp` |
//! | `memory_max` | bytes with an optional `K`/`M`/`G`/`T` suffix (powers of 1024), or `max` | `512M` |
//! | `pids_max` | 1 to 4194304, or `max` | `64` |
//! | `cpu_weight` | 1 to 10000 (100 is the kernel's default weight) | `50` |
//! | `cpu_quota` | percent of one CPU, 1 to 100000, or `max` | `max` |
//! | `job_user` | the account fetch tools run as (never `root`) | `nobody` |
//! | `cache_root` | `<absolute dir> <owner user>`; repeatable | none |
#![forbid(unsafe_code)]

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Default location of the configuration file.
pub const DEFAULT_PATH: &str = "/etc/safexec.conf";

/// Files larger than this are refused: the format needs a few hundred bytes, and a bounded read
/// keeps a setuid process from being made to allocate without limit.
const MAX_FILE_SIZE: u64 = 64 * 1024;

/// Smallest accepted `memory_max`: below this not even the dynamic loader of a tool fits, so a
/// smaller value is a typo, not a policy.
const MIN_MEMORY: u64 = 1024 * 1024;

/// The kernel's `PID_MAX_LIMIT` on 64-bit: a larger `pids_max` could never be reached.
const MAX_PIDS: u64 = 4_194_304;

/// A cache root and the account that owns it: the only source of an owner-based identity switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRoot {
    /// Absolute directory path, lexically normal (no `.`, `..`, `//` or trailing `/`). The core
    /// still resolves it on the file system before use: the parser cannot see symlinks.
    pub path: PathBuf,
    /// The user name that jobs under this root run as.
    pub owner: String,
}

/// Resource limits applied to every job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum memory in bytes (`None` = no limit).
    pub memory_max: Option<u64>,
    /// Maximum number of tasks (`None` = no limit).
    pub pids_max: Option<u64>,
    /// cgroup v2 `cpu.weight` (1..=10000, 100 is normal; `None` = leave the kernel default).
    pub cpu_weight: Option<u32>,
    /// CPU quota as a percentage of one CPU (`None` = unlimited).
    pub cpu_quota_percent: Option<u32>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_max: Some(512 * 1024 * 1024),
            pids_max: Some(64),
            cpu_weight: Some(50),
            cpu_quota_percent: None,
        }
    }
}

/// The parsed configuration; [`Config::default`] is what applies without a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Path of the parent cgroup, relative to each hierarchy's root, that holds the `nppp.<pid>`
    /// job groups.
    pub cgroup_parent: String,
    /// Limits for each job.
    pub limits: Limits,
    /// Cache roots for the owner-based identity switch (rg).
    pub cache_roots: Vec<CacheRoot>,
    /// The account that fetch tools run as.
    pub job_user: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cgroup_parent: "nppp".to_string(),
            limits: Limits::default(),
            cache_roots: Vec::new(),
            job_user: "nobody".to_string(),
        }
    }
}

/// The outcome of [`load`]: the configuration in force, and a warning for the caller to print
/// when an unsafe file was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// The configuration to use (the defaults when the file is missing or was refused).
    pub config: Config,
    /// Set when a file exists but was refused (not root-owned, writable by others, a symlink,
    /// not a regular file); the defaults are used then.
    pub warning: Option<String>,
}

/// Loads [`DEFAULT_PATH`]; see [`load_from`].
pub fn load() -> Result<Loaded, String> {
    load_from(Path::new(DEFAULT_PATH))
}

/// Loads a configuration file.
///
/// A missing file gives the defaults. A file that is not a regular root:root file, is group- or
/// other-writable, is a symlink, or sits in a directory that is not root-owned or is writable by
/// others is ignored: the defaults apply and [`Loaded::warning`] says why. Refusing such a file
/// is safe because the defaults are the strict choice (no cache roots, so no identity switch).
/// A file that is trusted but does not parse is an error: the administrator meant something,
/// and guessing could loosen a limit.
pub fn load_from(path: &Path) -> Result<Loaded, String> {
    let shown = path.display();
    // O_NOFOLLOW: a symlink is refused instead of followed, and every check below runs on the
    // opened descriptor (fstat), so no rename between check and read can swap the file.
    let file = match File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Loaded {
                config: Config::default(),
                warning: None,
            })
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Ok(refused(path, "it is a symlink"));
        }
        Err(e) => return Err(format!("cannot open {shown}: {e}")),
    };
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {shown}: {e}"))?;
    if let Some(why) = unsafe_owner_or_mode(meta.is_file(), meta.uid(), meta.gid(), meta.mode()) {
        return Ok(refused(path, why));
    }
    if let Some(dir) = path.parent() {
        let dmeta =
            std::fs::metadata(dir).map_err(|e| format!("cannot stat {}: {e}", dir.display()))?;
        if dmeta.uid() != 0 || dmeta.mode() & 0o022 != 0 {
            return Ok(refused(
                path,
                "its directory is not root-owned or is writable by others",
            ));
        }
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(format!("{shown}: larger than {MAX_FILE_SIZE} bytes"));
    }
    let mut text = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut text)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    let config = parse(&text).map_err(|e| format!("{shown}: {e}"))?;
    Ok(Loaded {
        config,
        warning: None,
    })
}

fn refused(path: &Path, why: &str) -> Loaded {
    Loaded {
        config: Config::default(),
        // The caller adds that the defaults are used.
        warning: Some(format!("ignoring {}: {why}", path.display())),
    }
}

/// Why a file with this type, owner and mode may not configure a setuid program, if it may not.
fn unsafe_owner_or_mode(regular: bool, uid: u32, gid: u32, mode: u32) -> Option<&'static str> {
    if !regular {
        Some("it is not a regular file")
    } else if uid != 0 || gid != 0 {
        Some("it is not owned by root:root")
    } else if mode & 0o022 != 0 {
        Some("it is group- or other-writable")
    } else {
        None
    }
}

/// A parse error: the 1-based line number and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong, in lowercase.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses the text of a configuration file. Keys not given keep their defaults.
pub fn parse(text: &[u8]) -> Result<Config, ParseError> {
    let mut cfg = Config::default();
    let mut seen: Vec<&'static str> = Vec::new();
    for (index, raw) in text.split(|&b| b == b'\n').enumerate() {
        let line = index + 1;
        let err = |message: String| ParseError { line, message };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text = std::str::from_utf8(raw).map_err(|_| err("not valid UTF-8".to_string()))?;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let (key, value) = text
            .split_once('=')
            .ok_or_else(|| err("expected `key = value`".to_string()))?;
        let (key, value) = (key.trim(), value.trim());
        if value.is_empty() {
            return Err(err(format!("empty value for {key:?}")));
        }
        let key: &'static str = match key {
            "cgroup_parent" => "cgroup_parent",
            "memory_max" => "memory_max",
            "pids_max" => "pids_max",
            "cpu_weight" => "cpu_weight",
            "cpu_quota" => "cpu_quota",
            "job_user" => "job_user",
            "cache_root" => "cache_root",
            other => return Err(err(format!("unknown key {other:?}"))),
        };
        if key != "cache_root" {
            if seen.contains(&key) {
                return Err(err(format!("duplicate key {key:?}")));
            }
            seen.push(key);
        }
        let bad = |what: &str| err(format!("{key}: {what}, got {value:?}"));
        match key {
            "cgroup_parent" => {
                if !valid_cgroup_path(value) {
                    return Err(bad(
                        "expected a relative cgroup path of A-Za-z0-9._- components",
                    ));
                }
                cfg.cgroup_parent = value.to_string();
            }
            "memory_max" => {
                cfg.limits.memory_max = parse_max(value, parse_bytes)
                    .filter(|v| v.is_none_or(|b| b >= MIN_MEMORY))
                    .ok_or_else(|| {
                        bad("expected bytes of at least 1M (suffix K, M, G or T) or `max`")
                    })?;
            }
            "pids_max" => {
                cfg.limits.pids_max = parse_max(value, |v| parse_in(v, 1, MAX_PIDS))
                    .ok_or_else(|| bad("expected 1 to 4194304 or `max`"))?;
            }
            "cpu_weight" => {
                let w = parse_in(value, 1, 10_000).ok_or_else(|| bad("expected 1 to 10000"))?;
                cfg.limits.cpu_weight = Some(narrow(w));
            }
            "cpu_quota" => {
                cfg.limits.cpu_quota_percent = parse_max(value, |v| parse_in(v, 1, 100_000))
                    .ok_or_else(|| bad("expected a percentage from 1 to 100000 or `max`"))?
                    .map(narrow);
            }
            "job_user" => {
                if !valid_user(value) {
                    return Err(bad("expected a user name other than root"));
                }
                cfg.job_user = value.to_string();
            }
            _ => {
                let root = parse_cache_root(value).ok_or_else(|| {
                    bad("expected `<absolute normal path> <user other than root>`")
                })?;
                if cfg.cache_roots.iter().any(|r| r.path == root.path) {
                    return Err(err(format!("cache_root: duplicate path {:?}", root.path)));
                }
                cfg.cache_roots.push(root);
            }
        }
    }
    Ok(cfg)
}

/// Every value that reaches `narrow` was range-checked to at most 100000.
fn narrow(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// `max` → `Some(None)`; a value `f` accepts → `Some(Some(v))`; anything else → `None`.
fn parse_max(value: &str, f: impl Fn(&str) -> Option<u64>) -> Option<Option<u64>> {
    if value == "max" {
        Some(None)
    } else {
        f(value).map(Some)
    }
}

/// Plain ASCII digits only: `str::parse` would also take a leading `+`.
fn parse_u64(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn parse_in(value: &str, lo: u64, hi: u64) -> Option<u64> {
    parse_u64(value).filter(|v| (lo..=hi).contains(v))
}

fn parse_bytes(value: &str) -> Option<u64> {
    let (digits, shift) = match value.as_bytes().last()? {
        b'K' | b'k' => (&value[..value.len() - 1], 10),
        b'M' | b'm' => (&value[..value.len() - 1], 20),
        b'G' | b'g' => (&value[..value.len() - 1], 30),
        b'T' | b't' => (&value[..value.len() - 1], 40),
        _ => (value, 0),
    };
    parse_u64(digits)?.checked_mul(1u64 << shift)
}

fn valid_component(c: &str) -> bool {
    !c.is_empty()
        && c != "."
        && c != ".."
        && c.len() <= 255
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A relative path of plain components: it is joined below each hierarchy's mount point, so it
/// must not climb out (`..`) or start at `/`.
fn valid_cgroup_path(value: &str) -> bool {
    value.len() <= 1024 && value.split('/').all(valid_component)
}

/// The portable user-name shape (`useradd`'s default rule), and never root: the config must not
/// be a way to keep a job privileged.
fn valid_user(value: &str) -> bool {
    let b = value.as_bytes();
    value != "root"
        && !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-'))
}

fn parse_cache_root(value: &str) -> Option<CacheRoot> {
    let (path, owner) = value.rsplit_once([' ', '\t'])?;
    let path = path.trim_end();
    let normal = path.len() > 1
        && path.starts_with('/')
        && !path.bytes().any(|b| b.is_ascii_control())
        && path[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !normal || !valid_user(owner) {
        return None;
    }
    Some(CacheRoot {
        path: PathBuf::from(path),
        owner: owner.to_string(),
    })
}

fn fmt_max(f: &mut fmt::Formatter<'_>, key: &str, v: Option<u64>) -> fmt::Result {
    match v {
        Some(v) => writeln!(f, "{key} = {v}"),
        None => writeln!(f, "{key} = max"),
    }
}

/// Prints the configuration in the file format; [`parse`] reads it back to an equal value.
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "cgroup_parent = {}", self.cgroup_parent)?;
        fmt_max(f, "memory_max", self.limits.memory_max)?;
        fmt_max(f, "pids_max", self.limits.pids_max)?;
        // `cpu_weight` has no `max` spelling: `None` (kernel default) is written as 100, the
        // kernel's default weight, which is what `None` leaves in force.
        writeln!(f, "cpu_weight = {}", self.limits.cpu_weight.unwrap_or(100))?;
        fmt_max(f, "cpu_quota", self.limits.cpu_quota_percent.map(u64::from))?;
        writeln!(f, "job_user = {}", self.job_user)?;
        for root in &self.cache_roots {
            writeln!(f, "cache_root = {} {}", root.path.display(), root.owner)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn err_line(text: &str) -> usize {
        parse(text.as_bytes()).unwrap_err().line
    }

    #[test]
    fn empty_text_gives_the_defaults() {
        let cfg = parse(b"").unwrap();
        assert_eq!(cfg, Config::default());
        assert_eq!(cfg.limits.pids_max, Some(64));
        assert_eq!(cfg.limits.memory_max, Some(512 << 20));
        assert_eq!(cfg.limits.cpu_weight, Some(50));
        assert_eq!(cfg.job_user, "nobody");
    }

    #[test]
    fn full_file_parses() {
        let text = "\
# safexec limits
cgroup_parent = system.slice/npp-jobs
memory_max = 1G

  pids_max=128
cpu_weight = 20
cpu_quota = 150
job_user = npp-jobs
cache_root = /var/cache/nginx/site-a www-data
cache_root = /srv/cache/my site  siteb\r
";
        let cfg = parse(text.as_bytes()).unwrap();
        assert_eq!(cfg.cgroup_parent, "system.slice/npp-jobs");
        assert_eq!(cfg.limits.memory_max, Some(1 << 30));
        assert_eq!(cfg.limits.pids_max, Some(128));
        assert_eq!(cfg.limits.cpu_weight, Some(20));
        assert_eq!(cfg.limits.cpu_quota_percent, Some(150));
        assert_eq!(cfg.job_user, "npp-jobs");
        assert_eq!(
            cfg.cache_roots,
            vec![
                CacheRoot {
                    path: "/var/cache/nginx/site-a".into(),
                    owner: "www-data".into()
                },
                CacheRoot {
                    path: "/srv/cache/my site".into(),
                    owner: "siteb".into()
                },
            ]
        );
    }

    #[test]
    fn max_values_mean_unlimited() {
        let cfg = parse(b"memory_max = max\npids_max = max\ncpu_quota = max\n").unwrap();
        assert_eq!(cfg.limits.memory_max, None);
        assert_eq!(cfg.limits.pids_max, None);
        assert_eq!(cfg.limits.cpu_quota_percent, None);
    }

    #[test]
    fn byte_suffixes_are_powers_of_1024() {
        for (text, want) in [
            ("1048576", 1 << 20),
            ("1024K", 1 << 20),
            ("1024k", 1 << 20),
            ("3M", 3 << 20),
            ("2g", 2 << 30),
            ("1T", 1 << 40),
        ] {
            let cfg = parse(format!("memory_max = {text}").as_bytes()).unwrap();
            assert_eq!(cfg.limits.memory_max, Some(want), "{text}");
        }
    }

    #[test]
    fn errors_name_the_line() {
        let table = [
            ("a = b", 1, "unknown key \"a\""),
            ("\n\n# c\nnonsense", 4, "expected `key = value`"),
            ("pids_max = 64\npids_max = 65", 2, "duplicate key"),
            ("pids_max =", 1, "empty value"),
            ("pids_max = 0", 1, "pids_max"),
            ("pids_max = +5", 1, "pids_max"),
            ("pids_max = 4194305", 1, "pids_max"),
            ("memory_max = 10", 1, "at least 1M"),
            ("memory_max = 99999999999999999999", 1, "memory_max"),
            ("memory_max = 16777216T", 1, "memory_max"),
            ("memory_max = 5X", 1, "memory_max"),
            ("memory_max = M", 1, "memory_max"),
            ("cpu_weight = 0", 1, "cpu_weight"),
            ("cpu_weight = 10001", 1, "cpu_weight"),
            ("cpu_weight = max", 1, "cpu_weight"),
            ("cpu_quota = 0", 1, "cpu_quota"),
            ("cgroup_parent = /abs", 1, "cgroup_parent"),
            ("cgroup_parent = a/../b", 1, "cgroup_parent"),
            ("cgroup_parent = a//b", 1, "cgroup_parent"),
            ("cgroup_parent = a b", 1, "cgroup_parent"),
            ("job_user = root", 1, "job_user"),
            ("job_user = Bad", 1, "job_user"),
            ("cache_root = relative www-data", 1, "cache_root"),
            ("cache_root = /srv/../etc www-data", 1, "cache_root"),
            ("cache_root = /srv/ www-data", 1, "cache_root"),
            ("cache_root = / www-data", 1, "cache_root"),
            ("cache_root = /srv/c", 1, "cache_root"),
            ("cache_root = /srv/c root", 1, "cache_root"),
            ("cache_root = /a u\ncache_root = /a v", 2, "duplicate path"),
        ];
        for (text, line, needle) in table {
            let e = parse(text.as_bytes()).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
            assert!(e.to_string().contains(needle), "{text:?}: {e}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")));
        }
    }

    #[test]
    fn non_utf8_is_an_error_on_its_line() {
        assert_eq!(
            parse(b"pids_max = 5\njob_user = \xff\n").unwrap_err().line,
            2
        );
        assert_eq!(err_line("# ok\n\u{7f}"), 2);
    }

    #[test]
    fn hash_inside_a_value_is_not_a_comment() {
        assert_eq!(err_line("pids_max = 64 # comment"), 1);
    }

    #[test]
    fn printer_round_trips() {
        let mut cfg = Config::default();
        cfg.limits.cpu_quota_percent = Some(250);
        cfg.limits.memory_max = None;
        cfg.cache_roots.push(CacheRoot {
            path: "/var/cache/a b".into(),
            owner: "www-data".into(),
        });
        assert_eq!(parse(cfg.to_string().as_bytes()).unwrap(), cfg);
        assert_eq!(
            parse(Config::default().to_string().as_bytes()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn owner_and_mode_rules() {
        assert_eq!(unsafe_owner_or_mode(true, 0, 0, 0o100644), None);
        assert_eq!(unsafe_owner_or_mode(true, 0, 0, 0o100600), None);
        assert!(unsafe_owner_or_mode(true, 1000, 0, 0o100644).is_some());
        assert!(unsafe_owner_or_mode(true, 0, 1000, 0o100644).is_some());
        assert!(unsafe_owner_or_mode(true, 0, 0, 0o100664).is_some());
        assert!(unsafe_owner_or_mode(true, 0, 0, 0o100646).is_some());
        assert!(unsafe_owner_or_mode(false, 0, 0, 0o040755).is_some());
    }

    /// A fresh root-owned 0755 directory (these tests need root, as the real file does).
    fn scratch_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sx-config-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::chown(&dir, Some(0), Some(0)).expect("these tests need root");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    fn write(path: &Path, text: &str, mode: u32, owner: (u32, u32)) {
        std::fs::write(path, text).unwrap();
        std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1)).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn trusted_file_is_parsed() {
        let dir = scratch_dir("ok");
        let path = dir.join("safexec.conf");
        write(&path, "pids_max = 9\n", 0o644, (0, 0));
        let loaded = load_from(&path).unwrap();
        assert_eq!(loaded.warning, None);
        assert_eq!(loaded.config.limits.pids_max, Some(9));
        write(&path, "pids_max = 9\nnope = 1\n", 0o600, (0, 0));
        let e = load_from(&path).unwrap_err();
        assert_eq!(
            e,
            format!("{}: line 2: unknown key \"nope\"", path.display())
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn untrusted_files_are_ignored_with_a_warning() {
        let dir = scratch_dir("bad");
        let path = dir.join("safexec.conf");
        let cases: [(u32, (u32, u32), &str); 4] = [
            (0o664, (0, 0), "group- or other-writable"),
            (0o646, (0, 0), "group- or other-writable"),
            (0o644, (1000, 0), "not owned by root:root"),
            (0o644, (0, 1000), "not owned by root:root"),
        ];
        for (mode, owner, why) in cases {
            write(&path, "pids_max = 9\n", mode, owner);
            let loaded = load_from(&path).unwrap();
            assert_eq!(loaded.config, Config::default(), "{mode:o} {owner:?}");
            let w = loaded.warning.unwrap();
            assert_eq!(w, format!("ignoring {}: it is {why}", path.display()));
        }
        // A symlink to a trusted file is refused, not followed (O_NOFOLLOW).
        write(&path, "pids_max = 9\n", 0o644, (0, 0));
        let link = dir.join("link.conf");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(load_from(&link)
            .unwrap()
            .warning
            .unwrap()
            .contains("symlink"));
        // A directory is not a configuration file.
        let sub = dir.join("sub.conf");
        std::fs::create_dir(&sub).unwrap();
        assert!(load_from(&sub)
            .unwrap()
            .warning
            .unwrap()
            .contains("not a regular file"));
        // A writable directory could swap the file between runs.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(load_from(&path)
            .unwrap()
            .warning
            .unwrap()
            .contains("its directory"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn oversized_file_is_an_error() {
        let dir = scratch_dir("big");
        let path = dir.join("safexec.conf");
        let text = "# padding\n".repeat(8000);
        write(&path, &text, 0o644, (0, 0));
        assert!(load_from(&path)
            .unwrap_err()
            .contains("larger than 65536 bytes"));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn missing_file_gives_defaults_without_warning() {
        let loaded = load_from(Path::new("/nonexistent-dir/safexec.conf")).unwrap();
        assert_eq!(
            loaded,
            Loaded {
                config: Config::default(),
                warning: None
            }
        );
    }
}
