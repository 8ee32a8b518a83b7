//! `/etc/safexec.conf`: the root-owned configuration file, the one source of truth for job limits,
//! job identities and the cache sites that callers may act on.
//!
//! safexec (setuid root) calls [`load`] once, as root, before any privilege change; the purge
//! service reads the same file for its site list, and `cache-setup` writes `cache_root` lines in
//! the canonical form that [`Config`]'s `Display` prints.
//!
//! # Format
//!
//! One `key = value` per line. Blank lines and lines whose first non-blank character is `#`
//! are ignored; there are no trailing comments (a `#` inside a value is part of the value).
//! Spaces around the key and the value are trimmed. Every key except `cache_root` and
//! `caller_job_user` may appear once. An unknown key or a malformed line is an error that names
//! the line.
//!
//! | key | value | default |
//! |---|---|---|
//! | `cgroup_parent` | relative cgroup path, components of `A-Za-z0-9._-` | `nppp` |
//! | `memory_max` | bytes with an optional `K`/`M`/`G`/`T` suffix (powers of 1024), or `max` | `512M` |
//! | `pids_max` | 1 to 4194304, or `max` | `64` |
//! | `cpu_weight` | 1 to 10000 (100 is the kernel's default weight) | `50` |
//! | `cpu_quota` | percent of one CPU, 1 to 100000, or `max` | `max` |
//! | `job_user` | the account fetch tools run as (never `root`) | `nobody` |
//! | `caller_job_user` | `<caller user> <job user>`: that caller's jobs run as that user; repeatable | none |
//! | `caller_jobs_max` | concurrent jobs per caller, 1 to 4096 | `8` |
//! | `caller_memory_max` | memory of all of one caller's jobs together, bytes or `max` | `max` |
//! | `caller_pids_max` | tasks of all of one caller's jobs together, 1 to 4194304 or `max` | `max` |
//! | `cache_root` | `<absolute dir> <owner> [allow=…] [key=…] [levels=…] [url=…]`; repeatable | none |
//!
//! ## `cache_root`
//!
//! ```text
//! cache_root = /var/cache/nginx/example.com www-data allow=exsite,@exadmins key=$scheme$request_method$host$request_uri levels=1:2 url=https://example.com
//! ```
//!
//! The value is read from the right: trailing `name=value` tokens with one of the names `allow`,
//! `key`, `levels` and `url` are options (each at most once); the last other token is the owner
//! (the account the cache's files belong to, never root); the rest is the directory, which may
//! contain spaces.
//! - `allow=` lists the callers, user names or `@group` names, that may act on this cache (purge
//!   it, search it with rg). A line without `allow=` binds no caller: only root may use it. This
//!   is the fail-closed default, so an old two-field line grants nothing to site users.
//! - `key=` is the nginx cache key template (no spaces), by default
//!   `$scheme$request_method$host$request_uri`; `levels=` the `levels=` of `fastcgi_cache_path`,
//!   by default `1:2`. Only their syntax is checked here; the key variables are checked by the
//!   tool that evaluates them.
//! - `url=` lists the site's base URLs (`http(s)://host[:port]`, comma-separated): how a purge
//!   request for a URL or a `Host` finds its cache, and what gets re-warmed.
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

/// nginx's usual FastCGI cache key, the default of `key=`.
pub const DEFAULT_CACHE_KEY: &str = "$scheme$request_method$host$request_uri";

/// The usual `levels=`, the default of `levels=`.
pub const DEFAULT_LEVELS: &str = "1:2";

/// Default of `caller_jobs_max`.
pub const DEFAULT_CALLER_JOBS_MAX: u32 = 8;

/// Who may use a [`CacheRoot`]: one user, or every member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A user name.
    User(String),
    /// A group name (written `@name`): the group's members and those whose primary group it is.
    Group(String),
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Principal::User(u) => f.write_str(u),
            Principal::Group(g) => write!(f, "@{g}"),
        }
    }
}

/// A cache root, the account that owns it and the callers bound to it: the only source of an
/// owner-based identity switch, and the purge service's site list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRoot {
    /// Absolute directory path, lexically normal (no `.`, `..`, `//` or trailing `/`). The core
    /// still resolves it on the file system before use: the parser cannot see symlinks.
    pub path: PathBuf,
    /// The user name that owns the cache files (nginx's worker user); tools acting on this cache
    /// run as this account.
    pub owner: String,
    /// The callers that may use this root (`allow=`); empty means root only.
    pub allow: Vec<Principal>,
    /// The nginx cache key template (`key=`).
    pub key: String,
    /// The `levels=` of the cache (`levels=`).
    pub levels: String,
    /// The site's base URLs (`url=`), possibly empty.
    pub urls: Vec<String>,
}

impl CacheRoot {
    /// A root with the default key and levels, bound to no caller.
    pub fn new(path: impl Into<PathBuf>, owner: impl Into<String>) -> CacheRoot {
        CacheRoot {
            path: path.into(),
            owner: owner.into(),
            allow: Vec::new(),
            key: DEFAULT_CACHE_KEY.to_string(),
            levels: DEFAULT_LEVELS.to_string(),
            urls: Vec::new(),
        }
    }

    /// Whether a caller named `user` whose groups (primary and supplementary, by name) are
    /// `groups` may use this root. Root is not special-cased here: callers decide that.
    pub fn allows(&self, user: &str, groups: &[String]) -> bool {
        self.allow.iter().any(|p| match p {
            Principal::User(u) => u == user,
            Principal::Group(g) => groups.iter().any(|have| have == g),
        })
    }
}

/// One `caller_job_user` line: the jobs of `caller` run as `job_user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerJobUser {
    /// The calling user's name.
    pub caller: String,
    /// The account that caller's jobs run as (never root).
    pub job_user: String,
}

/// Limits on all of one caller's jobs together (its parent cgroup).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerLimits {
    /// Concurrent jobs per caller.
    pub jobs_max: u32,
    /// Memory of all of one caller's jobs in bytes (`None` = no limit).
    pub memory_max: Option<u64>,
    /// Tasks of all of one caller's jobs (`None` = no limit).
    pub pids_max: Option<u64>,
}

impl Default for CallerLimits {
    fn default() -> Self {
        CallerLimits {
            jobs_max: DEFAULT_CALLER_JOBS_MAX,
            memory_max: None,
            pids_max: None,
        }
    }
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
    /// The account that fetch tools run as, unless [`Config::caller_job_users`] names another for
    /// the caller.
    pub job_user: String,
    /// Per-caller job identities (`caller_job_user`).
    pub caller_job_users: Vec<CallerJobUser>,
    /// Limits on each caller's jobs together.
    pub caller_limits: CallerLimits,
}

impl Config {
    /// The account the jobs of `caller` (a user name) run as.
    pub fn job_user_for(&self, caller: &str) -> &str {
        self.caller_job_users
            .iter()
            .find(|m| m.caller == caller)
            .map_or(self.job_user.as_str(), |m| m.job_user.as_str())
    }

    /// The cache roots that a caller may use (see [`CacheRoot::allows`]).
    pub fn roots_for<'a>(
        &'a self,
        user: &'a str,
        groups: &'a [String],
    ) -> impl Iterator<Item = &'a CacheRoot> + 'a {
        self.cache_roots
            .iter()
            .filter(move |r| r.allows(user, groups))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            cgroup_parent: "nppp".to_string(),
            limits: Limits::default(),
            cache_roots: Vec::new(),
            job_user: "nobody".to_string(),
            caller_job_users: Vec::new(),
            caller_limits: CallerLimits::default(),
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
            "caller_job_user" => "caller_job_user",
            "caller_jobs_max" => "caller_jobs_max",
            "caller_memory_max" => "caller_memory_max",
            "caller_pids_max" => "caller_pids_max",
            other => return Err(err(format!("unknown key {other:?}"))),
        };
        if key != "cache_root" && key != "caller_job_user" {
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
            "caller_job_user" => {
                let m = value
                    .split_once([' ', '\t'])
                    .map(|(c, j)| (c.trim(), j.trim()))
                    .filter(|(c, j)| valid_user(c) && valid_user(j))
                    .ok_or_else(|| bad("expected `<caller user> <job user other than root>`"))?;
                if cfg.caller_job_users.iter().any(|have| have.caller == m.0) {
                    return Err(err(format!("caller_job_user: duplicate caller {:?}", m.0)));
                }
                cfg.caller_job_users.push(CallerJobUser {
                    caller: m.0.to_string(),
                    job_user: m.1.to_string(),
                });
            }
            "caller_jobs_max" => {
                let n = parse_in(value, 1, 4096).ok_or_else(|| bad("expected 1 to 4096"))?;
                cfg.caller_limits.jobs_max = narrow(n);
            }
            "caller_memory_max" => {
                cfg.caller_limits.memory_max = parse_max(value, parse_bytes)
                    .filter(|v| v.is_none_or(|b| b >= MIN_MEMORY))
                    .ok_or_else(|| {
                        bad("expected bytes of at least 1M (suffix K, M, G or T) or `max`")
                    })?;
            }
            "caller_pids_max" => {
                cfg.caller_limits.pids_max = parse_max(value, |v| parse_in(v, 1, MAX_PIDS))
                    .ok_or_else(|| bad("expected 1 to 4194304 or `max`"))?;
            }
            _ => {
                let root = parse_cache_root(value).map_err(|what| bad(&what))?;
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

/// Parses a `cache_root` value (see the module docs); the error says what is wrong.
fn parse_cache_root(value: &str) -> Result<CacheRoot, String> {
    const SHAPE: &str = "expected `<absolute normal path> <owner other than root> [allow=…] [key=…] [levels=…] [url=…]`";
    let mut rest = value;
    let mut opts: Vec<(&str, &str)> = Vec::new();
    // Options are the trailing tokens with a known name; the first token from the right that is
    // not one is the owner, and everything before it is the path.
    let owner = loop {
        let (head, last) = match rest.rsplit_once([' ', '\t']) {
            Some((h, l)) => (h.trim_end(), l),
            None => return Err(SHAPE.to_string()),
        };
        match last.split_once('=') {
            Some((name @ ("allow" | "key" | "levels" | "url"), v)) => {
                if opts.iter().any(|(n, _)| *n == name) {
                    return Err(format!("duplicate option {name}="));
                }
                if v.is_empty() {
                    return Err(format!("empty option {name}="));
                }
                opts.push((name, v));
                rest = head;
            }
            _ => {
                rest = head;
                break last;
            }
        }
    };
    let path = rest;
    let normal = path.len() > 1
        && path.starts_with('/')
        && !path.bytes().any(|b| b.is_ascii_control())
        && path[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..");
    if !normal || !valid_user(owner) {
        return Err(SHAPE.to_string());
    }
    let mut root = CacheRoot::new(path, owner);
    for (name, v) in opts {
        match name {
            "allow" => {
                for item in v.split(',') {
                    let p = match item.strip_prefix('@') {
                        Some(g) if valid_user(g) || g == "root" => Principal::Group(g.to_string()),
                        None if valid_user(item) => Principal::User(item.to_string()),
                        _ => return Err(format!("allow=: not a user or @group name: {item:?}")),
                    };
                    if !root.allow.contains(&p) {
                        root.allow.push(p);
                    }
                }
            }
            "key" => {
                if !v.contains('$') || v.bytes().any(|b| b.is_ascii_control()) {
                    return Err(format!("key=: expected an nginx key template, got {v:?}"));
                }
                root.key = v.to_string();
            }
            "levels" => {
                if !valid_levels(v) {
                    return Err(format!(
                        "levels=: expected 1 to 3 of 1 or 2 joined by `:`, got {v:?}"
                    ));
                }
                root.levels = v.to_string();
            }
            _ => {
                for u in v.split(',') {
                    if !valid_base_url(u) {
                        return Err(format!("url=: expected http(s)://host[:port], got {u:?}"));
                    }
                    root.urls.push(u.to_string());
                }
            }
        }
    }
    Ok(root)
}

/// nginx's `levels=`: one to three levels of one or two hex digits each.
fn valid_levels(v: &str) -> bool {
    let parts: Vec<&str> = v.split(':').collect();
    (1..=3).contains(&parts.len()) && parts.iter().all(|p| *p == "1" || *p == "2")
}

/// `http(s)://host[:port]` with an optional trailing `/`, the host of DNS characters or a
/// bracketed IPv6 literal. Paths are not part of a site's base: the cache key has no place for them.
fn valid_base_url(u: &str) -> bool {
    let Some(rest) = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
    else {
        return false;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host_ok, port) = match rest.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, port)) => (
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.'),
                port,
            ),
            None => return false,
        },
        None => {
            let (h, port) = match rest.find(':') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let ok = !h.is_empty()
                && h.len() <= 253
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
            (ok, port)
        }
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .and_then(|p| parse_in(p, 1, 65535))
            .is_some();
    host_ok && port_ok
}

fn fmt_max(f: &mut fmt::Formatter<'_>, key: &str, v: Option<u64>) -> fmt::Result {
    match v {
        Some(v) => writeln!(f, "{key} = {v}"),
        None => writeln!(f, "{key} = max"),
    }
}

/// Prints the value of a `cache_root` line in its canonical form (every option written out).
impl fmt::Display for CacheRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path.display(), self.owner)?;
        if !self.allow.is_empty() {
            let names: Vec<String> = self.allow.iter().map(ToString::to_string).collect();
            write!(f, " allow={}", names.join(","))?;
        }
        write!(f, " key={} levels={}", self.key, self.levels)?;
        if !self.urls.is_empty() {
            write!(f, " url={}", self.urls.join(","))?;
        }
        Ok(())
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
        writeln!(f, "caller_jobs_max = {}", self.caller_limits.jobs_max)?;
        fmt_max(f, "caller_memory_max", self.caller_limits.memory_max)?;
        fmt_max(f, "caller_pids_max", self.caller_limits.pids_max)?;
        for m in &self.caller_job_users {
            writeln!(f, "caller_job_user = {} {}", m.caller, m.job_user)?;
        }
        for root in &self.cache_roots {
            writeln!(f, "cache_root = {root}")?;
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
                CacheRoot::new("/var/cache/nginx/site-a", "www-data"),
                CacheRoot::new("/srv/cache/my site", "siteb"),
            ]
        );
    }

    #[test]
    fn cache_root_options_are_read_from_the_right() {
        let cfg = parse(
            b"cache_root = /srv/my cache www-data allow=site1,@admins,site1 key=$scheme$host$request_uri levels=2:2 url=https://a.example,http://b.example:8080/\n\
              cache_root = /srv/plain www-data\n",
        )
        .unwrap();
        let r = &cfg.cache_roots[0];
        assert_eq!(r.path, Path::new("/srv/my cache"));
        assert_eq!(r.owner, "www-data");
        assert_eq!(
            r.allow,
            [
                Principal::User("site1".into()),
                Principal::Group("admins".into())
            ]
        );
        assert_eq!(r.key, "$scheme$host$request_uri");
        assert_eq!(r.levels, "2:2");
        assert_eq!(r.urls, ["https://a.example", "http://b.example:8080/"]);
        let plain = &cfg.cache_roots[1];
        assert_eq!(plain.key, DEFAULT_CACHE_KEY);
        assert_eq!(plain.levels, DEFAULT_LEVELS);
        assert!(plain.allow.is_empty() && plain.urls.is_empty());
    }

    #[test]
    fn allow_binds_users_and_groups_and_nothing_else() {
        let cfg = parse(
            b"cache_root = /srv/a www-data allow=site1,@team\ncache_root = /srv/b www-data\n",
        )
        .unwrap();
        let [a, b] = &cfg.cache_roots[..] else {
            panic!()
        };
        assert!(a.allows("site1", &[]));
        assert!(a.allows("other", &["x".into(), "team".into()]));
        assert!(!a.allows("site2", &["site2".into()]));
        assert!(!a.allows("team", &[]), "a group name is not a user name");
        assert!(
            !b.allows("root", &["root".into()]),
            "no allow= binds nobody"
        );
        assert_eq!(cfg.roots_for("site1", &[]).count(), 1);
    }

    #[test]
    fn caller_job_users_and_limits() {
        let cfg = parse(
            b"job_user = nobody\ncaller_job_user = site1 npp-site1\ncaller_jobs_max = 2\ncaller_memory_max = 2G\ncaller_pids_max = 100\n",
        )
        .unwrap();
        assert_eq!(cfg.job_user_for("site1"), "npp-site1");
        assert_eq!(cfg.job_user_for("site2"), "nobody");
        assert_eq!(
            cfg.caller_limits,
            CallerLimits {
                jobs_max: 2,
                memory_max: Some(2 << 30),
                pids_max: Some(100)
            }
        );
        assert_eq!(Config::default().caller_limits.jobs_max, 8);
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
            ("cache_root = /a u allow=", 1, "empty option allow="),
            (
                "cache_root = /a u allow=x allow=y",
                1,
                "duplicate option allow=",
            ),
            ("cache_root = /a u allow=Bad", 1, "not a user or @group"),
            ("cache_root = /a u allow=@", 1, "not a user or @group"),
            ("cache_root = /a u levels=3", 1, "levels="),
            ("cache_root = /a u levels=1:2:2:1", 1, "levels="),
            ("cache_root = /a u key=plain", 1, "key="),
            ("cache_root = /a u url=ftp://x", 1, "url="),
            ("cache_root = /a u url=https://x/path", 1, "url="),
            ("cache_root = /a u url=https://x:0", 1, "url="),
            ("cache_root = /a allow=x", 1, "cache_root"),
            ("cache_root = allow=x", 1, "cache_root"),
            ("caller_job_user = a", 1, "caller_job_user"),
            ("caller_job_user = a root", 1, "caller_job_user"),
            (
                "caller_job_user = a b\ncaller_job_user = a c",
                2,
                "duplicate caller",
            ),
            ("caller_jobs_max = 0", 1, "caller_jobs_max"),
            ("caller_jobs_max = 4097", 1, "caller_jobs_max"),
            ("caller_memory_max = 5", 1, "caller_memory_max"),
            ("caller_pids_max = 0", 1, "caller_pids_max"),
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
        cfg.cache_roots
            .push(CacheRoot::new("/var/cache/a b", "www-data"));
        let mut bound = CacheRoot::new("/var/cache/c", "nginx");
        bound.allow = vec![
            Principal::User("site1".into()),
            Principal::Group("admins".into()),
        ];
        bound.key = "$scheme$host$request_uri".into();
        bound.levels = "2".into();
        bound.urls = vec!["https://example.com".into(), "http://[::1]:8080".into()];
        cfg.cache_roots.push(bound);
        cfg.caller_job_users.push(CallerJobUser {
            caller: "site1".into(),
            job_user: "npp-site1".into(),
        });
        cfg.caller_limits = CallerLimits {
            jobs_max: 3,
            memory_max: Some(1 << 30),
            pids_max: None,
        };
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
