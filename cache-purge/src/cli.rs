// The command-line definition, shared with build.rs (which renders the man page from it), so it
// only uses clap and std.

use std::path::PathBuf;

use clap::Parser;

/// The exit codes, printed in `--help` and the man page.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  every request done: purged, or not cached
  1  a deletion or the key index failed (see the message; other requests were still done)
  2  bad input: a URL, --cache-key, --levels or option combination (nothing deleted)
  3  unsafe setup refused: the cache path, its owner, or running as root without --owner (nothing deleted)
  4  done, but unsafe entries were left alone (symlink, FIFO, foreign owner, hard link, other filesystem)";

/// Purges nginx cache entries exactly, by prefix or all, as the cache owner.
///
/// Each URL is taken as a browser sends it; its entries for GET and HEAD, in the hex case given,
/// upper and lower (and with a key index, every other case form), and every Vary variant are
/// deleted. Paths are computed from the key; a single URL never scans the cache unless the entry
/// varies and there is no index.
#[derive(Parser, Debug)]
#[command(name = "cache-purge", version, after_help = EXIT_CODES, after_long_help = EXIT_CODES)]
pub struct Args {
    /// URLs to purge (absolute http or https).
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,

    /// The cache directory (nginx's fastcgi_cache_path / proxy_cache_path), absolute; `.` is
    /// the current directory (how safexec hands over the root it checked).
    #[arg(long, value_name = "DIR")]
    pub cache_path: Option<PathBuf>,

    /// nginx's cache key template.
    #[arg(
        long,
        value_name = "TEMPLATE",
        default_value = "$scheme$request_method$host$request_uri"
    )]
    pub cache_key: String,

    /// The cache's levels= (1 to 3 levels of 1 or 2, or empty for none).
    #[arg(long, value_name = "L", default_value = "1:2")]
    pub levels: String,

    /// Purge every entry whose key starts with this URL's key (repeatable).
    #[arg(long, value_name = "URL")]
    pub prefix: Vec<String>,

    /// Purge every entry of the cache.
    #[arg(long)]
    pub all: bool,

    /// One JSON object per request and line.
    #[arg(long)]
    pub json: bool,

    /// Report what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// The cache owner. Required when started as root, which then drops to this user.
    #[arg(long, value_name = "USER")]
    pub owner: Option<String>,

    /// Where key indexes live (one SQLite file per cache path; never inside the cache).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/cache-purge")]
    pub index_dir: PathBuf,

    /// Use no key index: prefix purges and Vary variants scan every file's key.
    #[arg(long, conflicts_with_all = ["index_rebuild", "index_import"])]
    pub no_index: bool,

    /// Use the key index as it is (no refresh before the lookup): faster single-URL purges when
    /// something else refreshes it (a timer running --index-refresh); files stored since the last
    /// refresh (new Vary variants, new hex-case forms) are then missed.
    #[arg(long, conflicts_with_all = ["no_index", "index_refresh", "index_rebuild"])]
    pub index_no_refresh: bool,

    /// Rebuild the key index from scratch (reads every entry's key).
    #[arg(long)]
    pub index_rebuild: bool,

    /// Bring the key index up to date (re-reads only directories that changed).
    #[arg(long)]
    pub index_refresh: bool,

    /// Add entries from cache-preload --index-out JSON lines (FILE, or - for stdin); each is
    /// confirmed by reading the file's key.
    #[arg(long, value_name = "FILE")]
    pub index_import: Option<PathBuf>,

    /// Print the man page (roff) and exit.
    #[arg(long, hide = true)]
    pub generate_man: bool,

    /// Do not use openat2 even where the kernel has it (tests of the portable walk).
    #[arg(long, hide = true)]
    pub no_openat2: bool,
}
