use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// The traps `doctor` reports (ids as in --json), shown in --help and the man page.
pub const TRAPS: &str = "\
Traps checked by doctor (each printed with its fix):
  vary-honoured               nginx stores one entry per Vary variant (no *_ignore_headers Vary)
  zlib-output-compression     the pool or php.ini turns zlib.output_compression on
  port-dropped-from-host      a site on a non-default port whose HTTP_HOST param has no port
  cache-under-world-writable  a cache below /tmp, /var/tmp, /dev/shm or another world-writable dir
  open-file-cache             open_file_cache keeps serving purged entries
  proc-open-disabled          disable_functions blocks proc_open (PHP cannot start safexec)
  pool-runs-as-nginx-user     no separation between nginx and the site's PHP
  key-without-scheme          http and https share cache entries
  key-uses-http-host          the key uses the raw Host header, unlike the preloader and purger
  keys-differ-in-one-cache    locations writing one cache use different keys
  no-cache-key, no-levels, no-pool  what cache-setup cannot map to a safexec.conf line
  safexec-conf-*              /etc/safexec.conf missing, unreadable, invalid, lacking or
                              disagreeing with a cache
  safexec-missing, safexec-not-setuid, safexec-nosuid-mount
  cgroup-controllers          no memory or pids controller for safexec's job limits
  landlock-unavailable        the kernel offers no Landlock";

/// Help epilogue: exit codes, then the traps.
pub const AFTER_HELP: &str = concat!(
    "Exit status:\n",
    "  0  detect: done; doctor: no trap found; apply: file written, or already up to date\n",
    "  1  doctor: at least one trap found (each is printed with its fix)\n",
    "  2  bad input: an unreadable or malformed nginx, PHP-FPM or safexec.conf file (the\n",
    "     message names file and line), or a bad command line; nothing was written"
);

/// Finds every cached site in the live nginx and PHP-FPM configuration, checks the known
/// traps and writes the safexec.conf cache_root lines.
#[derive(Debug, Parser)]
#[command(name = "cache-setup", version, after_help = concat_help())]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// List the caches, the servers and locations using them, the key in force for each and
    /// the PHP-FPM pool (user, group) behind each FastCGI location.
    #[command(after_help = AFTER_HELP)]
    Detect(DetectArgs),
    /// Check every site and the host for the known traps; print each with its fix.
    #[command(after_help = AFTER_HELP, after_long_help = concat_help())]
    Doctor(DoctorArgs),
    /// Write the detected sites' cache_root lines into /etc/safexec.conf (atomically,
    /// root:root 0644, previous version kept as FILE.bak); a second run changes nothing.
    #[command(after_help = AFTER_HELP)]
    Apply(ApplyArgs),
}

/// Where the nginx and PHP-FPM configuration is read from.
#[derive(Debug, Clone, Args)]
pub struct Sources {
    /// Read this nginx main file and follow its includes (default: run `nginx -T`).
    #[arg(long, value_name = "FILE", conflicts_with = "nginx_dump")]
    pub nginx_conf: Option<PathBuf>,
    /// Read a saved `nginx -T` output (`-T` dumps every file nginx loads).
    #[arg(long, value_name = "FILE")]
    pub nginx_dump: Option<PathBuf>,
    /// The nginx binary run with -T.
    #[arg(long, value_name = "PATH", default_value = "/usr/sbin/nginx")]
    pub nginx_bin: PathBuf,
    /// A PHP-FPM pool file or php-fpm.conf to read besides DIR/*/fpm/php-fpm.conf and
    /// DIR/*/fpm/pool.d/*.conf (repeatable).
    #[arg(long, value_name = "FILE")]
    pub fpm_conf: Vec<PathBuf>,
    /// PHP's configuration directory.
    #[arg(long, value_name = "DIR", default_value = "/etc/php")]
    pub php_dir: PathBuf,
}

/// `detect` options.
#[derive(Debug, Args)]
pub struct DetectArgs {
    /// Configuration sources.
    #[command(flatten)]
    pub sources: Sources,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `doctor` options.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Configuration sources.
    #[command(flatten)]
    pub sources: Sources,
    /// Print JSON (one object: checks and trap count) instead of text.
    #[arg(long)]
    pub json: bool,
    /// The safexec configuration compared with nginx's caches.
    #[arg(long, value_name = "FILE", default_value = "/etc/safexec.conf")]
    pub config: PathBuf,
    /// The safexec binary to check (default: /usr/bin/safexec, then /usr/local/bin/safexec).
    #[arg(long, value_name = "PATH")]
    pub safexec: Option<PathBuf>,
    /// The mount table used for the nosuid and cgroup checks.
    #[arg(long, value_name = "FILE", default_value = "/proc/self/mountinfo")]
    pub mountinfo: PathBuf,
    /// Assume this Landlock ABI instead of asking the kernel (0 = none; for tests).
    #[arg(long, value_name = "N", hide = true)]
    pub landlock_abi: Option<i32>,
}

/// `apply` options.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Configuration sources.
    #[command(flatten)]
    pub sources: Sources,
    /// The file to update.
    #[arg(long, value_name = "FILE", default_value = "/etc/safexec.conf")]
    pub config: PathBuf,
    /// Print the change as a unified diff and write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Exit codes and the trap list, for the long help and the man page.
pub fn concat_help() -> String {
    format!("{AFTER_HELP}\n\n{TRAPS}")
}
