//! Deleting cache entries: the [`PurgeBackend`] the queue calls, and [`CacheBackend`], which is
//! the `cache_purge` library's fd-relative engine (the one `cache-purge` and `safexec
//! cache-purge` use): every path resolved from the root's descriptor without following links or
//! crossing mounts, only regular files of the cache owner with one link deleted, keys read at
//! the header's fixed offset, every method, `%xx` case form and `Vary` variant of a URL.

use cache_purge::tree::Tree;
use cache_purge::{IndexMode, Options, Purger, Report};
use nginx_cache::Levels;

use crate::sites::{Site, Target};

/// Counts of one purge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Removed {
    /// Cache files unlinked.
    pub files: usize,
    /// Entries left alone (symlinks, foreign owners, odd types).
    pub skipped: usize,
}

/// What the service needs from a deletion engine. Every call is blocking and runs on a blocking
/// thread; errors are one line for the client.
pub trait PurgeBackend: Send + Sync + 'static {
    /// Removes every entry of the URL.
    fn purge_url(&self, site: &Site, t: &Target) -> Result<Removed, String>;
    /// Removes every entry whose key starts with the key of `t` (a prefix).
    fn purge_prefix(&self, site: &Site, t: &Target) -> Result<Removed, String>;
    /// Removes every cache file of the site, keeping its directories.
    fn purge_all(&self, site: &Site) -> Result<Removed, String>;
    /// Removes the file or the level directory's files at `rel` (validated components below the
    /// root; empty = everything). A missing entry is success with nothing removed.
    fn purge_rel(&self, site: &Site, rel: &[String]) -> Result<Removed, String>;
}

/// The `cache_purge` engine, acting as the service's own uid.
#[derive(Debug, Clone)]
pub struct CacheBackend {
    uid: u32,
    index: IndexMode,
}

impl CacheBackend {
    /// An engine for the cache owner `uid`; `index` is where key indexes live (`Off`: exact
    /// purges compute paths and scan only for entries that vary).
    pub fn new(uid: u32, index: IndexMode) -> CacheBackend {
        CacheBackend { uid, index }
    }

    /// One purger per job: `cache_purge` refreshes its index once per purger.
    fn open(&self, site: &Site) -> Result<Purger, String> {
        Purger::open(&Options {
            root: site.root().to_path_buf(),
            key: site.conf.key.clone(),
            levels: site.conf.levels.clone(),
            owner_uid: self.uid,
            index: self.index.clone(),
            dry_run: false,
        })
        .map_err(|e| e.to_string())
    }
}

fn counted(r: Result<Report, cache_purge::Error>) -> Result<Removed, String> {
    let r = r.map_err(|e| e.to_string())?;
    if let Some(f) = r.failed.first() {
        return Err(format!(
            "{} of the deletions failed, first: {f}",
            r.failed.len()
        ));
    }
    Ok(Removed {
        files: usize::try_from(r.files).unwrap_or(usize::MAX),
        skipped: r.skipped.len(),
    })
}

impl PurgeBackend for CacheBackend {
    fn purge_url(&self, site: &Site, t: &Target) -> Result<Removed, String> {
        counted(self.open(site)?.purge_url(&t.url()))
    }

    fn purge_prefix(&self, site: &Site, t: &Target) -> Result<Removed, String> {
        counted(self.open(site)?.purge_prefix(&t.url()))
    }

    fn purge_all(&self, site: &Site) -> Result<Removed, String> {
        counted(self.open(site)?.purge_all())
    }

    fn purge_rel(&self, site: &Site, rel: &[String]) -> Result<Removed, String> {
        if rel.is_empty() {
            return self.purge_all(site);
        }
        let levels = Levels::parse(&site.conf.levels).map_err(|e| e.to_string())?;
        let depth = levels.depth();
        let tree = Tree::open(site.root(), self.uid, levels).map_err(|e| e.to_string())?;
        if rel.len() == depth + 1 {
            // One file: its directory opened beneath the root without following links.
            let Some(dir) = tree.open_dir(&rel[..depth].join("/"))? else {
                return Ok(Removed::default());
            };
            let name = &rel[depth];
            return match tree.check_file(&dir, name)? {
                None => Ok(Removed::default()),
                Some(()) => Ok(Removed {
                    files: usize::from(tree.unlink(&dir, name)?),
                    skipped: 0,
                }),
            };
        }
        // A level directory: opening it first refuses a symlinked or foreign component.
        let prefix = rel.join("/");
        if tree.open_dir(&prefix)?.is_none() {
            return Ok(Removed::default());
        }
        let mut out = Removed::default();
        let mut problems = Vec::new();
        let mut failed = Vec::new();
        let under = format!("{prefix}/");
        tree.for_each_leaf(&mut problems, &mut |dir| {
            if dir.rel != prefix && !dir.rel.starts_with(&under) {
                return Ok(());
            }
            let names = match tree.entry_names(dir) {
                Ok(n) => n,
                Err(r) => {
                    out.skipped += 1;
                    failed.push(r);
                    return Ok(());
                }
            };
            for name in names {
                match tree.check_file(dir, &name) {
                    Ok(None) => {}
                    Err(_) => out.skipped += 1,
                    Ok(Some(())) => match tree.unlink(dir, &name) {
                        Ok(true) => out.files += 1,
                        Ok(false) => {}
                        Err(r) => failed.push(r),
                    },
                }
            }
            Ok(())
        })
        .map_err(|e| e.to_string())?;
        match failed.first() {
            Some(f) => Err(format!("{} deletions failed, first: {f}", failed.len())),
            None => Ok(out),
        }
    }
}
