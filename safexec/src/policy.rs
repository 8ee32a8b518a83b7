//! The tool allowlist and the per-tool argument policies (default deny).
//!
//! A tool is allowlisted only if it has a policy here. Each policy lists the options it
//! accepts (exact names only, so getopt's unique-prefix abbreviations such as `--use-ask` are
//! refused too), how many values each takes, and a check for values that could name files,
//! programs or configuration. Everything not listed is refused with one line and exit 1.
//!
//! The parser mirrors GNU getopt / curl / lexopt closely enough that the split between options,
//! option values and operands is the same one the tool will make: options may follow operands,
//! `--` ends options, a short option that takes a value consumes the rest of its token or the
//! next token, and bundles are only accepted when every letter is a flag.
#![forbid(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::msg;

/// The allowlisted tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// GNU wget 1.x (NPP's preloader).
    Wget,
    /// curl.
    Curl,
    /// The project's crawler.
    CachePreload,
    /// ripgrep (NPP's cache scan on FUSE mounts).
    Rg,
    /// sha256sum (harmless; used by the benchmark).
    Sha256sum,
    /// The project's nginx cache purger, run as a configured cache root's owner.
    CachePurge,
}

impl Tool {
    /// The tool for an allowlisted base name.
    pub fn from_base(base: &OsStr) -> Option<Tool> {
        match base.as_bytes() {
            b"wget" => Some(Tool::Wget),
            b"curl" => Some(Tool::Curl),
            b"cache-preload" => Some(Tool::CachePreload),
            b"rg" => Some(Tool::Rg),
            b"sha256sum" => Some(Tool::Sha256sum),
            b"cache-purge" => Some(Tool::CachePurge),
            _ => None,
        }
    }

    /// The base name.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Wget => "wget",
            Tool::Curl => "curl",
            Tool::CachePreload => "cache-preload",
            Tool::Rg => "rg",
            Tool::Sha256sum => "sha256sum",
            Tool::CachePurge => "cache-purge",
        }
    }
}

/// Where a `-P /tmp` value sits in the tool's arguments, for the private-directory rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpSlot {
    /// Index into [`Checked::args`].
    pub index: usize,
    /// Bytes before the directory in that argument (`""`, `"-P"` or `"--directory-prefix="`).
    pub prefix: OsString,
}

/// A value that names a local file the tool would open (cache-preload `--url-list FILE`).
///
/// In setuid mode the tool would open it as the job user, which can read what the caller
/// cannot (issue 15 class 1), so the core opens it as the caller before the drop and hands the
/// tool the descriptor instead (on stdin, the value rewritten to `-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSlot {
    /// Index into [`Checked::args`].
    pub index: usize,
    /// Bytes before the value in that argument (`""` or `"--url-list="`).
    pub prefix: OsString,
    /// The file name as given.
    pub value: OsString,
}

/// `cache-purge` through safexec: what the caller asked for, before the core adds the cache
/// directory, key template and levels from the caller's `cache_root` line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeRequest {
    /// `--cache-path DIR` as given: it must name one of the caller's configured roots.
    pub cache_path: Option<OsString>,
    /// The URL operands and `--prefix` values (they choose the root by host).
    pub urls: Vec<OsString>,
    /// `--all` was given.
    pub all: bool,
    /// The caller's arguments without `--cache-path` and its value.
    pub args: Vec<OsString>,
}

impl PurgeRequest {
    /// Whether the request acts on a cache at all (`--help`/`--version` alone do not).
    pub fn touches_cache(&self) -> bool {
        self.all || !self.urls.is_empty() || self.cache_path.is_some()
    }
}

/// The outcome of a successful check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The tool's arguments (after the tool name), unchanged.
    pub args: Vec<OsString>,
    /// `-P /tmp` values to rewrite to the job's private directory.
    pub tmp_slots: Vec<TmpSlot>,
    /// rg: the single path operand.
    pub rg_path: Option<OsString>,
    /// rg: the index of that operand in [`Checked::args`].
    pub rg_path_index: Option<usize>,
    /// Values naming local files to be opened as the caller (cache-preload `--url-list`).
    pub file_slots: Vec<FileSlot>,
    /// cache-purge: the request.
    pub purge: Option<PurgeRequest>,
}

impl Checked {
    /// Replaces every `-P /tmp` value with `dir`.
    pub fn rewrite_tmp(&mut self, dir: &OsStr) {
        for slot in &self.tmp_slots {
            let mut v = slot.prefix.clone();
            v.push(dir);
            self.args[slot.index] = v;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Any,
    /// Free text sent over the wire (headers, user agent): no CR/LF.
    Text,
    /// Only `/dev/null`.
    DevNull,
    /// `/dev/null` or `-` (stdout, an fd the caller gave us).
    DevNullOrDash,
    /// wget `-P`: only `/tmp` (rewritten to a private per-job directory in setuid mode).
    TmpDir,
    /// wget `-e`: only robots / use_proxy / http_proxy / https_proxy.
    WgetExecute,
    /// curl values where a leading `@` reads a file.
    NoAt,
    /// curl `-w`: no `@file`, no `%output{}` (writes a file).
    WriteOut,
    /// An http(s) URL.
    Url,
    /// A local file the tool reads: `-` (stdin), or a name the core opens as the caller.
    InputFile,
    /// An absolute directory without control characters (cache-purge `--cache-path`; the core
    /// accepts only one of the caller's configured cache roots).
    AbsDir,
    /// A plain word (HTTP method, encoding name, color mode).
    Word,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val {
    /// A flag.
    No,
    /// Needs a value (`--x=v`, `--x v`, `-xv`, `-x v`).
    Req(Check),
}

#[derive(Debug, Clone, Copy)]
struct Opt {
    long: &'static str,
    short: &'static str,
    val: Val,
}

const fn o(long: &'static str, short: &'static str, val: Val) -> Opt {
    Opt { long, short, val }
}

use Check::*;
use Val::*;

/// GNU wget: exactly what NPP passes (npp-usage.md §1.6–§1.9) plus a documented few
/// (`--spider`, `-S`, `-T`, `--max-redirect`, `-O/-o/-a /dev/null`, `--version`, …).
const WGET: &[Opt] = &[
    o("quiet", "q", No),
    o("no-verbose", "nv", No),
    o("verbose", "v", No),
    o("recursive", "r", No),
    o("level", "l", Req(Word)),
    o("no-cache", "", No),
    o("no-config", "", No),
    o("no-cookies", "", No),
    o("delete-after", "", No),
    o("no-dns-cache", "", No),
    o("no-check-certificate", "", No),
    o("prefer-family", "", Req(Word)),
    o("retry-on-http-error", "", Req(Word)),
    o("waitretry", "", Req(Word)),
    o("dns-timeout", "", Req(Word)),
    o("connect-timeout", "", Req(Word)),
    o("read-timeout", "", Req(Word)),
    o("timeout", "T", Req(Word)),
    o("tries", "t", Req(Word)),
    o("ignore-case", "", No),
    o("execute", "e", Req(WgetExecute)),
    o("directory-prefix", "P", Req(TmpDir)),
    o("limit-rate", "", Req(Word)),
    o("wait", "w", Req(Word)),
    o("random-wait", "", No),
    o("reject-regex", "", Req(Text)),
    o("accept-regex", "", Req(Text)),
    o("reject", "R", Req(Text)),
    o("accept", "A", Req(Text)),
    o("domains", "D", Req(Text)),
    o("exclude-domains", "", Req(Text)),
    o("header", "", Req(Text)),
    o("user-agent", "U", Req(Text)),
    o("referer", "", Req(Text)),
    o("spider", "", No),
    o("server-response", "S", No),
    o("max-redirect", "", Req(Word)),
    o("no-parent", "np", No),
    o("no-directories", "nd", No),
    o("no-host-directories", "nH", No),
    o("span-hosts", "H", No),
    o("page-requisites", "p", No),
    o("inet4-only", "4", No),
    o("inet6-only", "6", No),
    o("no-proxy", "", No),
    o("https-only", "", No),
    o("no-http-keep-alive", "", No),
    o("output-document", "O", Req(DevNullOrDash)),
    o("output-file", "o", Req(DevNull)),
    o("append-output", "a", Req(DevNull)),
    o("version", "V", No),
    o("help", "h", No),
];

/// curl: a conservative set; nothing that reads or writes caller-chosen files.
const CURL: &[Opt] = &[
    o("silent", "s", No),
    o("show-error", "S", No),
    o("fail", "f", No),
    o("fail-with-body", "", No),
    o("location", "L", No),
    o("head", "I", No),
    o("include", "i", No),
    o("insecure", "k", No),
    o("get", "G", No),
    o("globoff", "g", No),
    o("compressed", "", No),
    o("no-progress-meter", "", No),
    o("http1.1", "", No),
    o("http2", "", No),
    o("ipv4", "4", No),
    o("ipv6", "6", No),
    o("verbose", "v", No),
    o("version", "V", No),
    o("disable", "q", No),
    o("output", "o", Req(DevNullOrDash)),
    o("dump-header", "D", Req(DevNullOrDash)),
    o("write-out", "w", Req(WriteOut)),
    o("header", "H", Req(NoAt)),
    o("user-agent", "A", Req(Text)),
    o("referer", "e", Req(Text)),
    o("max-time", "m", Req(Word)),
    o("connect-timeout", "", Req(Word)),
    o("retry", "", Req(Word)),
    o("retry-delay", "", Req(Word)),
    o("retry-max-time", "", Req(Word)),
    o("max-redirs", "", Req(Word)),
    o("limit-rate", "", Req(Word)),
    o("range", "r", Req(Word)),
    o("request", "X", Req(Word)),
    o("proxy", "x", Req(Url)),
    o("noproxy", "", Req(Text)),
    o("resolve", "", Req(Text)),
    o("connect-to", "", Req(Text)),
    o("data", "d", Req(NoAt)),
    o("data-raw", "", Req(Text)),
    o("url", "", Req(Url)),
];

/// The crawler's native flags (crawler/src/cli/args.rs); its wget dialect is [`WGET`]. Listed
/// first so its `-H` (header) wins over wget's `-H` (span-hosts). Nothing here writes to a
/// caller-chosen path; `--url-list FILE` is opened as the caller and handed over as a descriptor.
/// `--cache-path`, `--index-out` and `--replay-keys` (files and caches) are not listed: refused.
const CACHE_PRELOAD_NATIVE: &[Opt] = &[
    o("json", "", No),
    o("sitemap", "", Req(Url)),
    o("robots-sitemaps", "", No),
    o("no-robots-sitemaps", "", No),
    o("url-list", "", Req(InputFile)),
    o("no-recursive", "", No),
    o("max-depth", "", Req(Word)),
    o("max-pages", "", Req(Word)),
    o("max-per-pattern", "", Req(Word)),
    o("max-queue", "", Req(Word)),
    o("pct-mode", "", Req(Word)),
    o("mobile", "", No),
    o("header", "H", Req(Text)),
    o("concurrency", "j", Req(Word)),
    o("retry-on", "", Req(Word)),
    o("max-retry-wait", "", Req(Word)),
    o("proxy", "", Req(Url)),
    o("no-progress", "", No),
    o("verify", "", No),
    o("max-concurrency", "", Req(Word)),
    o("max-rps", "", Req(Word)),
    o("cpu-reserve", "", Req(Word)),
    o("cache-header", "", Req(Text)),
];

/// ripgrep: NPP's flags and harmless output/search switches. Refused on purpose: `--pre`,
/// `--pre-glob`, `-z/--search-zip`, `--hostname-bin` (run programs), `-f/--file`,
/// `--ignore-file` (read caller-chosen files), `-L/--follow` (leave the cache root).
const RG: &[Opt] = &[
    o("files-with-matches", "l", No),
    o("files-without-match", "", No),
    o("max-count", "m", Req(Word)),
    o("text", "a", No),
    o("encoding", "E", Req(Word)),
    o("no-unicode", "", No),
    o("no-messages", "", No),
    o("no-ignore", "", No),
    o("no-config", "", No),
    o("fixed-strings", "F", No),
    o("regexp", "e", Req(Any)),
    o("no-heading", "", No),
    o("no-mmap", "", No),
    o("quiet", "q", No),
    o("ignore-case", "i", No),
    o("smart-case", "S", No),
    o("case-sensitive", "s", No),
    o("line-number", "n", No),
    o("no-line-number", "N", No),
    o("no-filename", "I", No),
    o("with-filename", "H", No),
    o("count", "c", No),
    o("only-matching", "o", No),
    o("invert-match", "v", No),
    o("word-regexp", "w", No),
    o("multiline", "U", No),
    o("null", "0", No),
    o("json", "", No),
    o("hidden", "", No),
    o("color", "", Req(Word)),
    o("max-depth", "d", Req(Word)),
    o("max-columns", "M", Req(Word)),
    o("threads", "j", Req(Word)),
    o("sort", "", Req(Word)),
    o("glob", "g", Req(Text)),
];

/// cache-purge (SEAMS §4): what to purge and how to report it. `--cache-key` and `--levels` are
/// refused: they come from the caller's `cache_root` line, as does the directory, so a caller
/// can only name (`--cache-path`) one of its own configured roots.
const CACHE_PURGE: &[Opt] = &[
    o("prefix", "", Req(Url)),
    o("all", "", No),
    o("json", "", No),
    o("dry-run", "", No),
    o("cache-path", "", Req(AbsDir)),
    o("help", "h", No),
    o("version", "V", No),
];

/// sha256sum: computing digests only (no `-c`, which reads a list of files); operands are
/// `/dev/null` or `-` only, since any other file would be read as the job user.
const SHA256SUM: &[Opt] = &[
    o("binary", "b", No),
    o("text", "t", No),
    o("zero", "z", No),
    o("tag", "", No),
    o("help", "", No),
    o("version", "", No),
];

struct Dialect {
    tool: Tool,
    tables: &'static [&'static [Opt]],
    /// `--name=value` is how this tool spells an attached long value (curl has no such form).
    long_eq: bool,
}

fn dialect(tool: Tool) -> Dialect {
    match tool {
        Tool::Wget => Dialect {
            tool,
            tables: &[WGET],
            long_eq: true,
        },
        Tool::Curl => Dialect {
            tool,
            tables: &[CURL],
            long_eq: false,
        },
        Tool::CachePreload => Dialect {
            tool,
            tables: &[CACHE_PRELOAD_NATIVE, WGET],
            long_eq: true,
        },
        Tool::Rg => Dialect {
            tool,
            tables: &[RG],
            long_eq: true,
        },
        Tool::Sha256sum => Dialect {
            tool,
            tables: &[SHA256SUM],
            long_eq: true,
        },
        Tool::CachePurge => Dialect {
            tool,
            tables: &[CACHE_PURGE],
            long_eq: true,
        },
    }
}

impl Dialect {
    fn long(&self, name: &[u8]) -> Option<&'static Opt> {
        self.tables
            .iter()
            .flat_map(|t| t.iter())
            .find(|o| o.long.as_bytes() == name)
    }
    fn short(&self, name: &[u8]) -> Option<&'static Opt> {
        self.tables
            .iter()
            .flat_map(|t| t.iter())
            .find(|o| !o.short.is_empty() && o.short.as_bytes() == name)
    }
}

/// One parsed option occurrence.
#[derive(Debug)]
struct Found {
    opt: &'static Opt,
    /// The option as written (for messages).
    spelled: OsString,
    value: Option<OsString>,
    /// Where the value sits: (arg index, bytes before the value in that arg).
    value_at: Option<(usize, OsString)>,
}

/// Tokens of a tool's argv split the way the tool will split them.
#[derive(Debug, Default)]
struct Parsed {
    found: Vec<Found>,
    operands: Vec<(usize, OsString)>,
}

fn parse(d: &Dialect, args: &[OsString]) -> Result<Parsed, String> {
    let tool = d.tool.name();
    let mut p = Parsed::default();
    let mut i = 0;
    let mut only_operands = false;
    while i < args.len() {
        let arg = &args[i];
        let b = arg.as_bytes();
        if only_operands || b == b"-" || !b.starts_with(b"-") {
            p.operands.push((i, arg.clone()));
            i += 1;
            continue;
        }
        if b == b"--" {
            only_operands = true;
            i += 1;
            continue;
        }
        if let Some(body) = b.strip_prefix(b"--") {
            let (name, attached) = match body.iter().position(|&c| c == b'=') {
                Some(eq) if d.long_eq => (&body[..eq], Some(&body[eq + 1..])),
                _ => (body, None),
            };
            let spelled = OsStr::from_bytes(&b[..2 + name.len()]).to_os_string();
            let opt = d
                .long(name)
                .ok_or_else(|| msg::option_refused(tool, &spelled))?;
            match (opt.val, attached) {
                (No, Some(_)) => return Err(msg::option_refused(tool, arg)),
                (No, None) => p.found.push(Found {
                    opt,
                    spelled,
                    value: None,
                    value_at: None,
                }),
                (Req(_), Some(v)) => p.found.push(Found {
                    opt,
                    spelled,
                    value: Some(OsStr::from_bytes(v).to_os_string()),
                    value_at: Some((i, OsStr::from_bytes(&b[..b.len() - v.len()]).to_os_string())),
                }),
                (Req(_), None) => {
                    let v = args
                        .get(i + 1)
                        .ok_or_else(|| msg::missing_value(tool, &spelled))?;
                    p.found.push(Found {
                        opt,
                        spelled,
                        value: Some(v.clone()),
                        value_at: Some((i + 1, OsString::new())),
                    });
                    i += 1;
                }
            }
            i += 1;
            continue;
        }
        // Short options. Multi-letter wget shorts (`-nv`, `-np`, `-nd`, `-nH`) match whole.
        let body = &b[1..];
        if let Some(opt) = d.short(body).filter(|o| o.short.len() > 1) {
            p.found.push(Found {
                opt,
                spelled: arg.clone(),
                value: None,
                value_at: None,
            });
            i += 1;
            continue;
        }
        let first = &body[..1];
        let spelled_first = OsString::from_vec([b"-".as_slice(), first].concat());
        let opt = d
            .short(first)
            .ok_or_else(|| msg::option_refused(tool, &spelled_first))?;
        match opt.val {
            Req(_) => {
                if body.len() > 1 {
                    p.found.push(Found {
                        opt,
                        spelled: spelled_first,
                        value: Some(OsStr::from_bytes(&body[1..]).to_os_string()),
                        value_at: Some((i, OsStr::from_bytes(&b[..2]).to_os_string())),
                    });
                } else {
                    let v = args
                        .get(i + 1)
                        .ok_or_else(|| msg::missing_value(tool, &spelled_first))?;
                    p.found.push(Found {
                        opt,
                        spelled: spelled_first,
                        value: Some(v.clone()),
                        value_at: Some((i + 1, OsString::new())),
                    });
                    i += 1;
                }
            }
            No => {
                // A bundle: every letter must be a known flag.
                for k in 0..body.len() {
                    let letter = &body[k..k + 1];
                    let spelled = OsString::from_vec([b"-".as_slice(), letter].concat());
                    match d.short(letter) {
                        Some(f) if f.val == No => p.found.push(Found {
                            opt: f,
                            spelled,
                            value: None,
                            value_at: None,
                        }),
                        _ => return Err(msg::option_refused(tool, arg)),
                    }
                }
            }
        }
        i += 1;
    }
    Ok(p)
}

fn has_ctl(v: &[u8]) -> bool {
    v.iter().any(|&c| c < 0x20 || c == 0x7f)
}

fn is_http_url(v: &[u8]) -> bool {
    let lower: Vec<u8> = v.iter().take(8).map(u8::to_ascii_lowercase).collect();
    (lower.starts_with(b"http://") || lower.starts_with(b"https://"))
        && !v.iter().any(|&c| c <= b' ' || c == 0x7f)
}

/// wget normalises wgetrc command names: case-insensitive, `-` and `_` ignored.
fn wgetrc_key(k: &[u8]) -> Vec<u8> {
    k.iter()
        .filter(|&&c| c != b'-' && c != b'_')
        .map(u8::to_ascii_lowercase)
        .collect()
}

fn check_value(tool: Tool, f: &Found, check: Check) -> Result<(), String> {
    let v = f.value.as_deref().unwrap_or_default();
    let b = v.as_bytes();
    let name = f.spelled.to_string_lossy();
    let refuse = |why: &str| Err(msg::value_refused(tool.name(), &name, v, why));
    match check {
        Any => Ok(()),
        Text | Word if has_ctl(b) => refuse("control characters"),
        Text => Ok(()),
        Word if b.iter().any(|c| c.is_ascii_whitespace()) => refuse("unexpected whitespace"),
        Word => Ok(()),
        DevNull if b == b"/dev/null" => Ok(()),
        DevNull => refuse("only /dev/null"),
        DevNullOrDash if b == b"/dev/null" || b == b"-" => Ok(()),
        DevNullOrDash => refuse("only /dev/null or -"),
        TmpDir if b == b"/tmp" || b == b"/tmp/" => Ok(()),
        TmpDir => refuse("only /tmp, which becomes a private per-job directory"),
        WgetExecute => {
            let Some(eq) = b.iter().position(|&c| c == b'=') else {
                return refuse("expected key=value");
            };
            let key = wgetrc_key(b[..eq].trim_ascii());
            let val = b[eq + 1..].trim_ascii();
            let val_l = val.to_ascii_lowercase();
            let ok = match key.as_slice() {
                b"robots" => matches!(val_l.as_slice(), b"on" | b"off"),
                b"useproxy" => {
                    matches!(
                        val_l.as_slice(),
                        b"on" | b"off" | b"yes" | b"no" | b"1" | b"0"
                    )
                }
                b"httpproxy" | b"httpsproxy" => val.is_empty() || is_http_url(val),
                _ => return refuse("only robots, use_proxy, http_proxy and https_proxy"),
            };
            if ok && !has_ctl(b) {
                Ok(())
            } else {
                refuse("invalid value")
            }
        }
        NoAt if b.first() == Some(&b'@') => refuse("@file reads a file"),
        NoAt if has_ctl(b) => refuse("control characters"),
        NoAt => Ok(()),
        WriteOut if b.first() == Some(&b'@') => refuse("@file reads a file"),
        WriteOut if b.windows(8).any(|w| w == b"%output{") => refuse("%output writes a file"),
        WriteOut => Ok(()),
        Url if is_http_url(b) => Ok(()),
        Url => refuse("only http:// and https:// URLs"),
        InputFile if b.is_empty() || has_ctl(b) => refuse("a file name or -"),
        InputFile => Ok(()),
        AbsDir if b.first() == Some(&b'/') && !has_ctl(b) => Ok(()),
        AbsDir => refuse("an absolute directory"),
    }
}

/// Checks `args` (everything after the tool name) against the tool's policy.
pub fn check(tool: Tool, args: &[OsString]) -> Result<Checked, String> {
    let d = dialect(tool);
    let parsed = parse(&d, args)?;
    let mut tmp_slots = Vec::new();
    let mut file_slots = Vec::new();
    for f in &parsed.found {
        if let Req(c) = f.opt.val {
            if let Some(value) = &f.value {
                check_value(tool, f, c)?;
                let (index, prefix) = f.value_at.clone().unwrap_or_default();
                if c == TmpDir {
                    tmp_slots.push(TmpSlot { index, prefix });
                } else if c == InputFile && value.as_bytes() != b"-" {
                    file_slots.push(FileSlot {
                        index,
                        prefix,
                        value: value.clone(),
                    });
                }
            }
        }
    }
    let mut rg_path = None;
    let mut rg_path_index = None;
    let mut purge = None;
    match tool {
        Tool::Wget | Tool::Curl | Tool::CachePreload => {
            for (_, op) in &parsed.operands {
                if !is_http_url(op.as_bytes()) {
                    return Err(msg::operand_refused(
                        tool.name(),
                        op,
                        "only http:// and https:// URLs",
                    ));
                }
            }
        }
        Tool::Rg => {
            let has_regexp = parsed.found.iter().any(|f| f.opt.long == "regexp");
            let version_only =
                parsed.operands.is_empty() && parsed.found.iter().all(|f| f.opt.long == "version");
            let paths: Vec<&(usize, OsString)> = parsed
                .operands
                .iter()
                .skip(usize::from(!has_regexp))
                .collect();
            if paths.len() != 1 || version_only {
                return Err(msg::rg_refusing());
            }
            let (index, path) = paths[0];
            if !path.as_bytes().starts_with(b"/") {
                return Err(msg::rg_refusing());
            }
            rg_path = Some(path.clone());
            rg_path_index = Some(*index);
        }
        Tool::Sha256sum => {
            for (_, op) in &parsed.operands {
                if op.as_bytes() != b"/dev/null" && op.as_bytes() != b"-" {
                    return Err(msg::operand_refused(
                        tool.name(),
                        op,
                        "only /dev/null or -: a file would be read as the job user",
                    ));
                }
            }
        }
        Tool::CachePurge => purge = Some(purge_request(&parsed, args)?),
    }
    Ok(Checked {
        args: args.to_vec(),
        tmp_slots,
        rg_path,
        rg_path_index,
        file_slots,
        purge,
    })
}

fn purge_request(parsed: &Parsed, args: &[OsString]) -> Result<PurgeRequest, String> {
    let tool = Tool::CachePurge.name();
    let mut req = PurgeRequest::default();
    // Argument indices that belong to `--cache-path` (the option and its value).
    let mut drop_at: Vec<usize> = Vec::new();
    for f in &parsed.found {
        match f.opt.long {
            "cache-path" => {
                if req.cache_path.is_some() {
                    return Err(msg::option_refused(tool, &f.spelled));
                }
                req.cache_path = f.value.clone();
                if let Some((vi, prefix)) = &f.value_at {
                    drop_at.push(*vi);
                    // `--cache-path DIR` is two arguments, `--cache-path=DIR` one.
                    if prefix.is_empty() {
                        drop_at.push(vi.saturating_sub(1));
                    }
                }
            }
            "prefix" => req.urls.extend(f.value.clone()),
            "all" => req.all = true,
            _ => {}
        }
    }
    for (_, op) in &parsed.operands {
        if !is_http_url(op.as_bytes()) {
            return Err(msg::operand_refused(
                tool,
                op,
                "only http:// and https:// URLs",
            ));
        }
        req.urls.push(op.clone());
    }
    req.args = args
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop_at.contains(i))
        .map(|(_, a)| a.clone())
        .collect();
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(items: &[&str]) -> Vec<OsString> {
        items.iter().map(OsString::from).collect()
    }

    fn ok(tool: Tool, items: &[&str]) -> Checked {
        check(tool, &a(items)).unwrap_or_else(|e| panic!("{items:?} refused: {e}"))
    }

    fn refused(tool: Tool, items: &[&str]) -> String {
        match check(tool, &a(items)) {
            Ok(c) => panic!("{items:?} accepted: {c:?}"),
            Err(e) => e,
        }
    }

    /// The exact preload command of NPP (npp-usage.md §1.7), as split by the shell.
    fn npp_preload() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = include_str!("../../tests/fixtures/npp-preload-fixed.args")
            .lines()
            .collect();
        v.extend_from_slice(&[
            "-e",
            "use_proxy=no",
            "-e",
            "http_proxy=http://127.0.0.1:3434",
            "-e",
            "https_proxy=http://127.0.0.1:3434",
            "-P",
            "/tmp",
            "--limit-rate=1280k",
            "--wait=0",
            "--reject-regex=/wp-admin/|/wp-json/|sitemap.*\\.xml",
            "--reject=bmp,css,gif,ico,jpg,js,png,svg,webp",
            "--domains=example.com,www.example.com",
            "--header=Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            "--user-agent=Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
            "--",
            "https://example.com",
        ]);
        v
    }

    #[test]
    fn npp_command_lines_pass() {
        let c = ok(Tool::Wget, &npp_preload());
        assert_eq!(
            c.tmp_slots,
            vec![TmpSlot {
                index: 26,
                prefix: OsString::new()
            }]
        );
        // Command A (start test) uses --quiet and --no-cache; C and D drop recursion.
        ok(
            Tool::Wget,
            &[
                "--quiet",
                "--no-cache",
                "--recursive",
                "-l",
                "inf",
                "-e",
                "robots=off",
                "--",
                "http://x/",
            ],
        );
        ok(
            Tool::Wget,
            &[
                "--quiet",
                "--no-config",
                "--tries=1",
                "-P",
                "/tmp",
                "--",
                "https://x/a?b=%2F",
            ],
        );
        // The same flags through the crawler's wget dialect.
        ok(Tool::CachePreload, &npp_preload());
        ok(
            Tool::CachePreload,
            &[
                "--json",
                "--sitemap",
                "https://x/s.xml",
                "-j",
                "4",
                "-H",
                "X-A: 1",
                "--url-list",
                "/tmp/l",
                "https://x/",
            ],
        );
        refused(Tool::CachePreload, &["--generate-man"]);
        refused(Tool::CachePreload, &["--sitemap", "file:///etc/passwd"]);
    }

    #[test]
    fn npp_rg_command_lines_pass() {
        let c = ok(
            Tool::Rg,
            &[
                "-l",
                "-m",
                "1",
                "--text",
                "-E",
                "none",
                "--no-unicode",
                "--no-messages",
                "--no-ignore",
                "--no-config",
                "^KEY: .*https://x/$",
                "/var/cache/nginx/",
            ],
        );
        assert_eq!(c.rg_path, Some(OsString::from("/var/cache/nginx/")));
        let c = ok(
            Tool::Rg,
            &[
                "-F",
                "--text",
                "-l",
                "-m",
                "1",
                "--no-mmap",
                "-e",
                "Status: 301",
                "-e",
                "Status: 302",
                "/c/",
            ],
        );
        assert_eq!(c.rg_path, Some(OsString::from("/c/")));
        ok(
            Tool::Rg,
            &["-m1", "--text", "--no-heading", "^KEY: [^\\r\\n]+", "/c/"],
        );
    }

    #[test]
    fn weakness_7_1_b_wget_dangerous_options_refused() {
        for bad in [
            &["--use-askpass=/tmp/x", "http://x/"][..],
            &["--use-ask=/tmp/x", "http://x/"],
            &["-e", "use_askpass=/tmp/x", "http://x/"],
            &["--execute=use-askpass=/tmp/x", "http://x/"],
            &["-eUSE_ASKPASS=/x", "http://x/"],
            &["-e", "post_file=/etc/shadow", "http://x/"],
            &["--config=/tmp/rc", "http://x/"],
            &["-i", "/tmp/list"],
            &["--input-file=/tmp/list"],
            &["--post-file=/etc/passwd", "http://x/"],
            &["-O", "/tmp/out", "http://x/"],
            &["-O/tmp/out", "http://x/"],
            &["--output-document=/home/u/x", "http://x/"],
            &["-o", "/tmp/log", "http://x/"],
            &["-a", "/tmp/log", "http://x/"],
            &["-P", "/home/u", "http://x/"],
            &["--directory-prefix=/var/www", "http://x/"],
            &["--load-cookies=/x", "http://x/"],
            &["-qO", "/x", "http://x/"],
            &["file:///etc/passwd"],
            &["ftp://x/"],
            &["--header", "X: a\r\nY: b", "http://x/"],
        ] {
            refused(Tool::Wget, bad);
        }
        assert!(refused(Tool::Wget, &["--use-askpass=/x"]).contains("'--use-askpass'"));
    }

    #[test]
    fn wget_forms_and_tmp_slots() {
        let c = ok(
            Tool::Wget,
            &[
                "-q",
                "-P/tmp",
                "--directory-prefix=/tmp/",
                "-O",
                "/dev/null",
                "-qr",
                "-nv",
                "http://x/",
            ],
        );
        assert_eq!(c.tmp_slots.len(), 2);
        let mut c2 = c.clone();
        c2.rewrite_tmp(OsStr::new("/tmp/nppp-cache/job.1.2"));
        assert_eq!(c2.args[1], OsString::from("-P/tmp/nppp-cache/job.1.2"));
        assert_eq!(
            c2.args[2],
            OsString::from("--directory-prefix=/tmp/nppp-cache/job.1.2")
        );
        ok(Tool::Wget, &["--version"]);
        ok(Tool::Wget, &[]);
        refused(Tool::Wget, &["-l"]);
        refused(Tool::Wget, &["--quiet=yes"]);
    }

    #[test]
    fn curl_policy() {
        ok(
            Tool::Curl,
            &[
                "-sSfL",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "-H",
                "Accept: x",
                "https://x/",
            ],
        );
        ok(Tool::Curl, &["--max-time", "5", "--", "http://127.0.0.1/"]);
        for bad in [
            &["-K", "/tmp/cfg", "http://x/"][..],
            &["--config", "/tmp/cfg"],
            &["-o", "/tmp/x", "http://x/"],
            &["-O", "http://x/f"],
            &["-T", "/etc/passwd", "http://x/"],
            &["-d", "@/etc/shadow", "http://x/"],
            &["-H", "@/etc/shadow", "http://x/"],
            &["-w", "@/etc/shadow", "http://x/"],
            &["-w", "%output{/tmp/x}", "http://x/"],
            &["file:///etc/passwd"],
            &["--max-time=5", "http://x/"],
            &["-sK", "/x", "http://x/"],
            &["--url", "file:///etc/passwd"],
            &["-x", "socks5://x", "http://x/"],
        ] {
            refused(Tool::Curl, bad);
        }
    }

    #[test]
    fn weakness_7_1_a_rg_dangerous_options_and_paths_refused() {
        for bad in [
            &["--pre", "/bin/cat", "x", "/c/"][..],
            &["--pre=/bin/cat", "x", "/c/"],
            &["--pre-glob", "*", "x", "/c/"],
            &["-z", "x", "/c/"],
            &["--search-zip", "x", "/c/"],
            &["--hostname-bin=/x", "x", "/c/"],
            &["-f", "/etc/shadow", "/c/"],
            &["-L", "x", "/c/"],
            &["x", "/victim/secret", "/c/"],
            &["x", "relative/"],
            &["x"],
            &[],
            &["--version"],
            &["-e", "a", "/a/", "/b/"],
        ] {
            refused(Tool::Rg, bad);
        }
    }

    #[test]
    fn sha256sum_policy() {
        ok(Tool::Sha256sum, &["/dev/null"]);
        ok(Tool::Sha256sum, &["-b", "--tag", "/dev/null", "-"]);
        refused(Tool::Sha256sum, &["-c", "/tmp/sums"]);
        refused(Tool::Sha256sum, &["--check=/x"]);
        // Class 1: any other file would be read as the job user.
        refused(Tool::Sha256sum, &["/etc/hostname"]);
        refused(Tool::Sha256sum, &["/proc/1/environ"]);
    }

    #[test]
    fn class_1_url_list_files_are_recorded_for_opening_as_the_caller() {
        let c = ok(
            Tool::CachePreload,
            &["--url-list", "/tmp/l", "--url-list=rel", "--url-list", "-"],
        );
        assert_eq!(
            c.file_slots,
            vec![
                FileSlot {
                    index: 1,
                    prefix: OsString::new(),
                    value: "/tmp/l".into()
                },
                FileSlot {
                    index: 2,
                    prefix: "--url-list=".into(),
                    value: "rel".into()
                },
            ]
        );
        refused(Tool::CachePreload, &["--url-list", ""]);
        refused(Tool::CachePreload, &["--url-list", "a\nb"]);
        for bad in ["--cache-path", "--index-out", "--replay-keys", "--config"] {
            refused(Tool::CachePreload, &[bad, "/x", "https://x/"]);
        }
    }

    #[test]
    fn cache_preload_pacing_and_seeding_switches_pass() {
        ok(
            Tool::CachePreload,
            &[
                "--json",
                "--no-robots-sitemaps",
                "--cpu-reserve",
                "0",
                "https://x/",
            ],
        );
        ok(Tool::CachePreload, &["--cpu-reserve=1.5", "https://x/"]);
    }

    #[test]
    fn cache_purge_policy_is_default_deny() {
        let c = ok(
            Tool::CachePurge,
            &[
                "--json",
                "--cache-path",
                "/var/cache/a",
                "https://a.example/x",
                "--prefix=https://a.example/blog/",
                "--dry-run",
            ],
        );
        let p = c.purge.unwrap();
        assert_eq!(p.cache_path, Some("/var/cache/a".into()));
        assert_eq!(
            p.urls,
            [
                OsString::from("https://a.example/blog/"),
                OsString::from("https://a.example/x")
            ]
        );
        assert_eq!(
            p.args,
            a(&[
                "--json",
                "https://a.example/x",
                "--prefix=https://a.example/blog/",
                "--dry-run"
            ])
        );
        let p = ok(Tool::CachePurge, &["--cache-path=/c", "--all"])
            .purge
            .unwrap();
        assert!(p.all && p.args == a(&["--all"]));
        assert!(!ok(Tool::CachePurge, &["--help"])
            .purge
            .unwrap()
            .touches_cache());
        for bad in [
            &["--cache-key", "$host", "https://x/"][..],
            &["--levels=1", "https://x/"],
            &["--cache-path", "rel", "https://x/"],
            &["--cache-path", "/a", "--cache-path", "/b", "https://x/"],
            &["/etc/passwd"],
            &["--prefix", "file:///"],
            &["--index", "/x", "https://x/"],
            &["-", "https://x/"],
        ] {
            refused(Tool::CachePurge, bad);
        }
    }

    #[test]
    fn allowlist_is_exactly_the_tools_with_policies() {
        for t in [
            "wget",
            "curl",
            "cache-preload",
            "rg",
            "sha256sum",
            "cache-purge",
        ] {
            assert_eq!(Tool::from_base(OsStr::new(t)).map(Tool::name), Some(t));
        }
        for t in [
            "tar", "gzip", "sh", "env", "time", "nohup", "", "wget ", "WGET",
        ] {
            assert!(Tool::from_base(OsStr::new(t)).is_none(), "{t}");
        }
    }
}
