//! Exact, prefix and whole-cache purges over a [`Tree`], with the key index as a hint.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use nginx_cache::index::Index;
use nginx_cache::{fold_triplets, md5_hex, KeyRequest, KeyTemplate, Levels, Part, Var};

use crate::tree::{join, Found, Tree};
use crate::Error;

/// Where `cache-purge` keeps key indexes by default (one SQLite file per cache root). Never
/// inside a cache root: nginx's loader deletes files it does not recognise there.
pub const DEFAULT_INDEX_DIR: &str = "/var/lib/cache-purge";

/// Whether and where to use a key index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IndexMode {
    /// No index: exact purges compute paths, prefix purges and variants scan the tree.
    Off,
    /// Use an index in this directory if the directory exists and is writable; else as `Off`.
    Auto(PathBuf),
    /// Use an index in this directory; failing to open it is an error.
    Required(PathBuf),
}

/// How to open a [`Purger`].
#[derive(Clone, Debug)]
pub struct Options {
    /// The cache directory (`fastcgi_cache_path`).
    pub root: PathBuf,
    /// The key template (`fastcgi_cache_key`).
    pub key: String,
    /// `levels=`.
    pub levels: String,
    /// The uid that owns the cache (nginx's worker user); the process must run as it.
    pub owner_uid: u32,
    /// The key index.
    pub index: IndexMode,
    /// Report what would be deleted, delete nothing.
    pub dry_run: bool,
}

/// What kind of purge a [`Report`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One URL, every method, case form and `Vary` variant.
    Url,
    /// Every key starting with a URL's key.
    Prefix,
    /// The whole cache.
    All,
}

impl Kind {
    /// The word used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Url => "url",
            Kind::Prefix => "prefix",
            Kind::All => "all",
        }
    }
}

/// How the files of a purge were found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// Paths computed from the key only (no index, no `Vary` seen).
    Computed,
    /// Computed paths plus the key index.
    Index,
    /// Computed paths plus a scan of every file's key.
    Scan,
    /// A walk of the level directories (purge-all reads no keys).
    Walk,
}

impl Lookup {
    /// The word used in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Lookup::Computed => "computed",
            Lookup::Index => "index",
            Lookup::Scan => "scan",
            Lookup::Walk => "walk",
        }
    }
}

/// The result of one purge request, as a value.
#[derive(Clone, Debug)]
pub struct Report {
    /// The URL, the prefix URL, or `*` for everything.
    pub request: String,
    /// What kind of purge.
    pub kind: Kind,
    /// The keys (exact) or key prefixes (prefix) looked for, lossy UTF-8.
    pub keys: Vec<String>,
    /// Files deleted (with `dry_run`: files that would be deleted).
    pub files: u64,
    /// Their paths relative to the cache root (exact purges only; prefix and all only count).
    pub paths: Vec<String>,
    /// Entries left alone because they are not safe to delete (symlinks, FIFOs, foreign
    /// owners, hard links, other filesystems, unreadable headers on a computed path).
    pub skipped: Vec<String>,
    /// Deletions that failed.
    pub failed: Vec<String>,
    /// How the files were found.
    pub lookup: Lookup,
    /// Whether nothing was deleted because of `dry_run`.
    pub dry_run: bool,
}

impl Report {
    fn new(request: &str, kind: Kind, dry_run: bool) -> Report {
        Report {
            request: request.to_owned(),
            kind,
            keys: Vec::new(),
            files: 0,
            paths: Vec::new(),
            skipped: Vec::new(),
            failed: Vec::new(),
            lookup: Lookup::Computed,
            dry_run,
        }
    }

    /// `purged`, `not-cached`, or `failed` (some deletion failed).
    pub fn status(&self) -> &'static str {
        if !self.failed.is_empty() {
            "failed"
        } else if self.files > 0 {
            "purged"
        } else {
            "not-cached"
        }
    }
}

/// A cache opened for purging.
pub struct Purger {
    tree: Tree,
    template: KeyTemplate,
    index: Option<Index>,
    dry_run: bool,
    refreshed: bool,
    index_note: Option<String>,
}

/// The index file for `root` in `dir`: `<md5 of the root path>.sqlite`.
pub fn index_file(dir: &Path, root: &Path) -> PathBuf {
    let name = md5_hex(root.as_os_str().as_encoded_bytes());
    dir.join(format!("{name}.sqlite"))
}

impl Purger {
    /// Checks the options and opens the cache root (see [`Tree::open`] for what is refused).
    ///
    /// Refuses to run as root: deleting is done as the cache owner, which must be the effective
    /// uid (`owner_uid`). Key templates with request-header variables (`$http_NAME`,
    /// `$cookie_NAME`) are refused: a purge cannot know the values visitors sent.
    pub fn open(opts: &Options) -> Result<Purger, Error> {
        let euid = rustix::process::geteuid().as_raw();
        if euid == 0 {
            return Err(Error::Refused(
                "refusing to purge as root: run as the cache owner (as root, give --owner)".into(),
            ));
        }
        if euid != opts.owner_uid {
            return Err(Error::Refused(format!(
                "running as uid {euid}, but the cache owner is uid {}",
                opts.owner_uid
            )));
        }
        let template = KeyTemplate::parse(&opts.key)?;
        let headers = template.header_vars();
        if !headers.is_empty() {
            return Err(Error::Usage(format!(
                "--cache-key: {} depend on request headers a purge cannot know; use --all",
                headers.join(" ")
            )));
        }
        let levels = Levels::parse(&opts.levels)?;
        let tree = Tree::open(&opts.root, opts.owner_uid, levels.clone())?;
        // Named after the checked path, so `--cache-path .` (from safexec) and the absolute path
        // share one index.
        let root_text = tree.path().to_string_lossy().into_owned();
        let (index, index_note) = match &opts.index {
            IndexMode::Off => (None, None),
            IndexMode::Auto(dir) | IndexMode::Required(dir) => {
                let file = index_file(dir, tree.path());
                match Index::open(&file, &root_text, &levels.to_string()) {
                    Ok(ix) => (Some(ix), None),
                    Err(e) if matches!(opts.index, IndexMode::Auto(_)) => (
                        None,
                        Some(format!(
                            "no key index ({}: {e}); scanning where needed",
                            file.display()
                        )),
                    ),
                    Err(e) => return Err(Error::Failed(format!("{}: {e}", file.display()))),
                }
            }
        };
        Ok(Purger {
            tree,
            template,
            index,
            dry_run: opts.dry_run,
            refreshed: false,
            index_note,
        })
    }

    /// Why the index is not used, when it was asked for and could not be opened.
    pub fn index_note(&self) -> Option<&str> {
        self.index_note.as_deref()
    }

    /// Uses the index as it is, without the refresh that otherwise precedes the first lookup.
    /// For callers that refresh on their own schedule (a timer running `--index-refresh`, the
    /// service after each batch): a single-URL purge then costs only its computed paths and one
    /// index query, but files nginx stored since the last refresh (a new `Vary` variant, a new
    /// mixed-case form) are not found until the next one.
    pub fn skip_index_refresh(&mut self) {
        self.refreshed = true;
    }

    /// The opened tree (tests use it to force the `openat2`-less walk).
    pub fn tree_mut(&mut self) -> &mut Tree {
        &mut self.tree
    }

    /// Whether a purge-all was started and did not finish (crash, kill): the caller should run
    /// [`Purger::purge_all`] to complete it.
    pub fn interrupted_purge_all(&self) -> bool {
        self.index
            .as_ref()
            .and_then(|ix| ix.meta("purge_all").ok().flatten())
            .is_some()
    }

    /// The keys nginx would compute for `url` as browsers send it: the normalized target as
    /// given and with every `%xx` triplet upper- and lower-cased, for `GET` and `HEAD` when the
    /// template has `$request_method`. Refuses relative and non-http(s) URLs.
    pub fn keys_for(&self, url: &str) -> Result<Vec<Vec<u8>>, Error> {
        let t = target(url)?;
        let mut forms = vec![t.target.clone()];
        for f in [
            norm_shim::upper_triplets(&t.target),
            norm_shim::lower_triplets(&t.target),
        ] {
            if !forms.contains(&f) {
                forms.push(f);
            }
        }
        let methods: &[&str] = if self.template.has_method() {
            &["GET", "HEAD"]
        } else {
            &["GET"]
        };
        let port = t.port.unwrap_or(if t.scheme == "https" { 443 } else { 80 });
        let mut keys = Vec::new();
        for method in methods {
            for form in &forms {
                let req = KeyRequest {
                    scheme: &t.scheme,
                    method,
                    host: &t.host,
                    port,
                    target: form,
                    headers: &[],
                };
                let k = self.template.render(&req);
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
        }
        Ok(keys)
    }

    /// The key prefixes for a prefix purge of `url` (one per method). The template must end
    /// with `$request_uri` or `$uri`, so that a longer URL gives a longer key.
    pub fn prefixes_for(&self, url: &str) -> Result<Vec<Vec<u8>>, Error> {
        if !matches!(
            self.template.parts().last(),
            Some(Part::Var(Var::RequestUri | Var::Uri))
        ) {
            return Err(Error::Usage(
                "--prefix needs a --cache-key that ends with $request_uri or $uri".into(),
            ));
        }
        let t = target(url)?;
        let methods: &[&str] = if self.template.has_method() {
            &["GET", "HEAD"]
        } else {
            &["GET"]
        };
        let port = t.port.unwrap_or(if t.scheme == "https" { 443 } else { 80 });
        Ok(methods
            .iter()
            .map(|method| {
                self.template.render(&KeyRequest {
                    scheme: &t.scheme,
                    method,
                    host: &t.host,
                    port,
                    target: &t.target,
                    headers: &[],
                })
            })
            .collect())
    }

    /// Deletes `dir/name` if its key satisfies `matches`. Returns the entry's `Vary` value when
    /// the file was a cache entry of a matching key.
    fn delete_if(
        &mut self,
        dir_rel: &str,
        name: &str,
        matches: &dyn Fn(&[u8]) -> bool,
        report: &mut Report,
        record_paths: bool,
    ) -> Option<Vec<u8>> {
        let dir = match self.tree.open_dir(dir_rel) {
            Ok(Some(d)) => d,
            Ok(None) => return None,
            Err(r) => {
                report.skipped.push(r);
                return None;
            }
        };
        let entry = match self.tree.inspect(&dir, name) {
            Found::Missing => {
                if let Some(ix) = &self.index {
                    let _ = ix.remove(name);
                }
                return None;
            }
            Found::Unsafe(r) | Found::Unparsed(r) => {
                report.skipped.push(r);
                return None;
            }
            Found::Entry(e) => e,
        };
        if !matches(&entry.key) {
            // Another key under this name (an MD5 collision, a stale index row): keep the file
            // and correct the index.
            if let Some(ix) = &self.index {
                let _ = ix.insert(name, dir_rel, &entry.key);
            }
            return None;
        }
        let rel = join(dir_rel, name);
        if self.dry_run {
            report.files += 1;
            if record_paths {
                report.paths.push(rel);
            }
        } else {
            match self.tree.unlink(&dir, name) {
                Ok(true) => {
                    report.files += 1;
                    if record_paths {
                        report.paths.push(rel);
                    }
                    if let Some(ix) = &self.index {
                        let _ = ix.remove(name);
                    }
                }
                Ok(false) => {}
                Err(r) => report.failed.push(r),
            }
        }
        Some(entry.header.vary)
    }

    /// Purges one URL: every computed path (methods × case forms), then every other file the
    /// index (refreshed first) or, without an index and when the entry varies, a scan finds
    /// with the same key up to the case of `%xx` triplets: all `Vary` variants.
    pub fn purge_url(&mut self, url: &str) -> Result<Report, Error> {
        let keys = self.keys_for(url)?;
        let mut report = Report::new(url, Kind::Url, self.dry_run);
        report.keys = keys
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        let folds: HashSet<Vec<u8>> = keys.iter().map(|k| fold_triplets(k)).collect();
        if self.index.is_some() {
            self.refresh_index()?;
        }
        self.in_transaction(|p| p.purge_url_inner(&keys, &folds, &mut report))?;
        Ok(report)
    }

    fn purge_url_inner(
        &mut self,
        keys: &[Vec<u8>],
        folds: &HashSet<Vec<u8>>,
        report: &mut Report,
    ) -> Result<(), Error> {
        let mut done: HashSet<String> = HashSet::new();
        let mut varies = false;
        for key in keys {
            let name = md5_hex(key);
            let dir = self.tree.levels().dirs(&name).join("/");
            if let Some(vary) = self.delete_if(&dir, &name, &|k| k == key.as_slice(), report, true)
            {
                varies |= !vary.is_empty();
            }
            done.insert(name);
        }
        let by_fold = |k: &[u8]| folds.contains(&fold_triplets(k));
        if self.index.is_some() {
            report.lookup = Lookup::Index;
            let mut rows = Vec::new();
            if let Some(ix) = &self.index {
                for key in keys {
                    rows.extend(ix.same_key(key)?);
                }
            }
            for row in rows {
                if done.insert(row.name.clone()) {
                    self.delete_if(&row.dir, &row.name, &by_fold, report, true);
                }
            }
        } else if varies {
            report.lookup = Lookup::Scan;
            self.scan(report, &|k| by_fold(k), true)?;
        }
        Ok(())
    }

    /// Runs `f` in one index transaction (one WAL commit for all its row updates, instead of
    /// one per deleted file); without an index just runs it. The transaction is committed even
    /// when `f` fails: its rows only record files already deleted.
    fn in_transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if let Some(ix) = &self.index {
            ix.begin()?;
        }
        let r = f(self);
        if let Some(ix) = &self.index {
            let c = ix.commit();
            if r.is_ok() {
                c?;
            }
        }
        r
    }

    /// Purges every entry whose key starts with the key of `url` (for `GET` and `HEAD`), up to
    /// the case of `%xx` triplets: `https://example.com/blog/` takes `/blog/`, `/blog/x` and
    /// `/blog/?p=2` but not `/blogx` (give `/blog` for that). With an index it reads only the
    /// matching rows; without one it reads every file's key.
    pub fn purge_prefix(&mut self, url: &str) -> Result<Report, Error> {
        let prefixes = self.prefixes_for(url)?;
        let mut report = Report::new(url, Kind::Prefix, self.dry_run);
        report.keys = prefixes
            .iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect();
        let folded: Vec<Vec<u8>> = prefixes.iter().map(|p| fold_triplets(p)).collect();
        let matches = |k: &[u8]| {
            let f = fold_triplets(k);
            folded.iter().any(|p| f.starts_with(p))
        };
        if self.index.is_some() {
            report.lookup = Lookup::Index;
            self.refresh_index()?;
            self.in_transaction(|this| this.prefix_from_index(&prefixes, &matches, &mut report))?;
        } else {
            report.lookup = Lookup::Scan;
            self.scan(&mut report, &matches, false)?;
        }
        Ok(report)
    }

    fn prefix_from_index(
        &mut self,
        prefixes: &[Vec<u8>],
        matches: &dyn Fn(&[u8]) -> bool,
        report: &mut Report,
    ) -> Result<(), Error> {
        for p in prefixes {
            let mut after: Option<(Vec<u8>, String)> = None;
            loop {
                let batch = match &self.index {
                    Some(ix) => ix.prefix_batch(
                        p,
                        after.as_ref().map(|(f, n)| (f.as_slice(), n.as_str())),
                        1024,
                    )?,
                    None => Vec::new(),
                };
                let Some((f, last)) = batch.last().cloned() else {
                    break;
                };
                for (_, row) in batch {
                    self.delete_if(&row.dir, &row.name, matches, report, false);
                }
                after = Some((f, last.name));
            }
        }
        Ok(())
    }

    /// Reads the key of every entry in the tree and deletes those that match.
    fn scan(
        &mut self,
        report: &mut Report,
        matches: &dyn Fn(&[u8]) -> bool,
        record_paths: bool,
    ) -> Result<(), Error> {
        let mut problems = Vec::new();
        let mut found_problems = Vec::new();
        let mut hits: Vec<(String, String)> = Vec::new();
        {
            let tree = &self.tree;
            tree.for_each_leaf(&mut problems, &mut |dir| {
                match tree.entry_names(dir) {
                    Ok(names) => {
                        for name in names {
                            match tree.inspect(dir, &name) {
                                Found::Entry(e) if matches(&e.key) => {
                                    hits.push((dir.rel.clone(), name));
                                }
                                Found::Unsafe(r) => found_problems.push(r),
                                _ => {}
                            }
                        }
                    }
                    Err(r) => found_problems.push(r),
                }
                Ok(())
            })?;
        }
        report.skipped.extend(problems);
        report.skipped.extend(found_problems);
        for (dir, name) in hits {
            self.delete_if(&dir, &name, matches, report, record_paths);
        }
        Ok(())
    }

    /// Deletes every cache entry of the tree: each leaf directory's files named like nginx
    /// names them, regular, the owner's, one link. Never enters `*_temp` or other non-level
    /// directories, never touches in-flight `<md5>.<10 digits>` temp files, keeps the level
    /// directories (nginx recreates missing ones anyway). Reads no keys.
    ///
    /// Crash semantics: the index records "purge-all pending" before the first unlink and
    /// clears it after the last; every unlink is atomic and files are never truncated, so a
    /// crash at any point leaves complete entries (served as HITs) and deleted ones (MISS),
    /// never a broken file, and the next `cache-purge` run sees the pending mark and finishes
    /// the purge-all first ([`Purger::interrupted_purge_all`]).
    pub fn purge_all(&mut self) -> Result<Report, Error> {
        let mut report = Report::new("*", Kind::All, self.dry_run);
        report.lookup = Lookup::Walk;
        if !self.dry_run {
            if let Some(ix) = &self.index {
                ix.set_meta("purge_all", &now_ns().to_string())?;
            }
        }
        let mut problems = Vec::new();
        let dry = self.dry_run;
        let tree = &self.tree;
        let mut leaves: Vec<String> = Vec::new();
        tree.for_each_leaf(&mut problems, &mut |dir| {
            leaves.push(dir.rel.clone());
            Ok(())
        })?;
        // Unlinks wait on the filesystem's journal far more than on the CPU: a few threads,
        // each on its own leaf directories, keep more of them in flight than one `rm -rf`.
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(2, 4);
        let per = leaves.len().div_ceil(threads).max(1);
        let results: Vec<(u64, Vec<String>, Vec<String>)> = std::thread::scope(|s| {
            let handles: Vec<_> = leaves
                .chunks(per)
                .map(|chunk| s.spawn(move || purge_leaves(tree, chunk, dry)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        (
                            0,
                            Vec::new(),
                            vec!["a purge-all worker thread failed".to_owned()],
                        )
                    })
                })
                .collect()
        });
        let mut files = 0u64;
        let mut found_problems = Vec::new();
        let mut failed = Vec::new();
        for (n, skipped, fails) in results {
            files += n;
            found_problems.extend(skipped);
            failed.extend(fails);
        }
        report.files = files;
        problems.extend(found_problems);
        report.skipped = problems;
        report.failed = failed;
        if !self.dry_run {
            if let Some(ix) = &self.index {
                ix.clear()?;
                ix.remove_meta("purge_all")?;
            }
        }
        Ok(report)
    }

    /// Brings the index up to date with the tree: every leaf directory whose modification time
    /// changed since it was last read is listed again, and new files' keys are read (at the
    /// fixed header offset). Directories modified within the last 2 seconds are re-read next
    /// time too, since a directory's mtime can stay the same across two quick changes.
    /// Runs at most once per `Purger` (a service should open one per batch).
    pub fn refresh_index(&mut self) -> Result<IndexStats, Error> {
        let mut stats = IndexStats::default();
        if self.refreshed {
            return Ok(stats);
        }
        let Some(ix) = &self.index else {
            return Ok(stats);
        };
        let racy_after = now_ns().saturating_sub(2_000_000_000);
        let tree = &self.tree;
        let mut problems = Vec::new();
        let known_dirs = ix.dir_mtimes()?;
        let dirs_seen = std::cell::Cell::new(0u64);
        let unchanged = |rel: &str, mtime: i64| {
            dirs_seen.set(dirs_seen.get() + 1);
            known_dirs.get(rel) == Some(&mtime)
        };
        ix.begin()?;
        let walked = tree.for_each_changed_leaf(&unchanged, &mut problems, &mut |dir| {
            stats.dirs_read += 1;
            let on_disk = match tree.entry_names(dir) {
                Ok(n) => n,
                Err(_) => return Ok(()),
            };
            let known: HashSet<String> = ix.names_in(&dir.rel)?.into_iter().collect();
            let present: HashSet<&str> = on_disk.iter().map(String::as_str).collect();
            for gone in known.iter().filter(|n| !present.contains(n.as_str())) {
                ix.remove(gone)?;
                stats.removed += 1;
            }
            for name in on_disk.iter().filter(|n| !known.contains(*n)) {
                if let Found::Entry(e) = tree.inspect(dir, name) {
                    ix.insert(name, &dir.rel, &e.key)?;
                    stats.added += 1;
                }
            }
            let stamp = if dir.mtime_ns >= racy_after {
                -1
            } else {
                dir.mtime_ns
            };
            ix.set_dir_mtime(&dir.rel, stamp)?;
            Ok(())
        });
        ix.commit()?;
        walked?;
        stats.dirs = dirs_seen.get();
        self.refreshed = true;
        Ok(stats)
    }

    /// Rebuilds the index from scratch (reads every file's key).
    pub fn rebuild_index(&mut self) -> Result<IndexStats, Error> {
        if let Some(ix) = &self.index {
            ix.clear()?;
        } else {
            return Err(Error::Usage(
                "no key index to rebuild (--no-index or no --index-dir)".into(),
            ));
        }
        self.refreshed = false;
        self.refresh_index()
    }

    /// Adds the entries `cache-preload --index-out` listed (JSON lines with `key` and `md5`),
    /// after reading each file's key to confirm it: an import can add hints, never wrong rows.
    pub fn import_index(&mut self, lines: &mut dyn std::io::BufRead) -> Result<IndexStats, Error> {
        let mut stats = IndexStats::default();
        if self.index.is_none() {
            return Err(Error::Usage(
                "no key index to import into (--no-index or no --index-dir)".into(),
            ));
        }
        let mut line = String::new();
        let mut rows = Vec::new();
        loop {
            line.clear();
            let n = lines
                .read_line(&mut line)
                .map_err(|e| Error::Failed(format!("--index-import: {e}")))?;
            if n == 0 {
                break;
            }
            if line.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(&line)
                .map_err(|e| Error::Usage(format!("--index-import: not a JSON line: {e}")))?;
            let Some(md5) = v.get("md5").and_then(|m| m.as_str()) else {
                continue;
            };
            if !nginx_cache::is_cache_file_name(md5.as_bytes()) {
                continue;
            }
            rows.push(md5.to_owned());
        }
        let Some(ix) = &self.index else {
            return Ok(stats);
        };
        ix.begin()?;
        for name in rows {
            let dir_rel = self.tree.levels().dirs(&name).join("/");
            if let Ok(Some(dir)) = self.tree.open_dir(&dir_rel) {
                if let Found::Entry(e) = self.tree.inspect(&dir, &name) {
                    ix.insert(&name, &dir_rel, &e.key)?;
                    stats.added += 1;
                }
            }
        }
        ix.commit()?;
        Ok(stats)
    }
}

/// Deletes the entries of the leaf directories `rels` (one purge-all worker): files, left
/// alone, failed.
fn purge_leaves(tree: &Tree, rels: &[String], dry: bool) -> (u64, Vec<String>, Vec<String>) {
    let mut files = 0u64;
    let mut skipped = Vec::new();
    let mut failed = Vec::new();
    for rel in rels {
        let dir = match tree.open_dir(rel) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(r) => {
                skipped.push(r);
                continue;
            }
        };
        let names = match tree.entry_names_unsorted(&dir) {
            Ok(n) => n,
            Err(r) => {
                skipped.push(r);
                continue;
            }
        };
        for name in names {
            match tree.check_file(&dir, &name) {
                Ok(None) => {}
                Err(r) => skipped.push(r),
                Ok(Some(())) if dry => files += 1,
                Ok(Some(())) => match tree.unlink(&dir, &name) {
                    Ok(true) => files += 1,
                    Ok(false) => {}
                    Err(r) => failed.push(r),
                },
            }
        }
    }
    (files, skipped, failed)
}

/// What an index refresh did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Leaf directories visited.
    pub dirs: u64,
    /// Leaf directories listed again (changed since the last refresh).
    pub dirs_read: u64,
    /// Rows added.
    pub added: u64,
    /// Rows removed (files gone).
    pub removed: u64,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Normalizes `url` as a browser sends it (norm-shim): absolute http(s) only, dot segments
/// (also `%2e%2e`) resolved, fragment dropped, host lower-case punycode without default port.
fn target(url: &str) -> Result<norm_shim::Target, Error> {
    let u = norm_shim::parse_base(url).map_err(|e| Error::Usage(format!("{url}: {e}")))?;
    norm_shim::target_of(&u, &norm_shim::Options::default())
        .map_err(|e| Error::Usage(format!("{url}: {e}")))
}
