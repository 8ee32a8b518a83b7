//! The key index: which cache file holds which key, so that prefix purges and purges of every
//! `Vary` variant need not open every file.
//!
//! **Format: SQLite** (through `rusqlite`, SQLite compiled in). A cache of a million entries
//! needs a structure that answers "every file whose key starts with P" and "every file whose key
//! is K, in any `%xx` case" in logarithmic time, is updated a few rows at a time by several
//! processes (purges, index refreshes) without rewriting the whole thing, survives a crash in
//! the middle of an update, and is read without loading it into memory. A B-tree with
//! transactions does all of that; SQLite is the B-tree with transactions that is on every
//! system, well tested, a single file and needs no server. A sorted flat file would need a full
//! rewrite per update; a JSON index (NPP's) is loaded whole per request.
//!
//! **Trust.** The index is a hint, never an authority: a row only says where to look. Whoever
//! deletes re-reads the file's key at the fixed header offset and deletes only on a match, so a
//! stale or forged row can make a purge miss a file (which a scan fallback covers) but never
//! delete the wrong one.
//!
//! Schema (version 1):
//!
//! ```sql
//! meta(k TEXT PRIMARY KEY, v TEXT)                 -- schema, root, levels
//! entries(name TEXT PRIMARY KEY, dir TEXT, key BLOB, fold BLOB)   -- one row per file
//! dirs(path TEXT PRIMARY KEY, mtime_ns INTEGER)    -- leaf directories as last read
//! ```
//!
//! `fold` is the key with the hex digits of every `%xx` triplet upper-cased ([`fold_triplets`]),
//! indexed, so every case form of a URL is one lookup and a prefix is one range.
//!
//! [`fold_triplets`]: crate::fold_triplets

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use crate::{fold_triplets, Error};

const SCHEMA: i64 = 1;

/// One file of the index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexRow {
    /// The file name (32 hex digits: `md5(key)` or a variant hash).
    pub name: String,
    /// Its directory relative to the cache root (`c/29`; empty without levels).
    pub dir: String,
    /// The key its header holds.
    pub key: Vec<u8>,
}

/// An open key index.
pub struct Index {
    conn: Connection,
}

fn err(e: rusqlite::Error) -> Error {
    Error::Index(e.to_string())
}

impl Index {
    /// Opens (creating if needed) the index at `path` for the cache at `root` with `levels`.
    /// An index made for another root, other levels or another schema is emptied, so its rows
    /// are rebuilt by the next refresh rather than trusted.
    pub fn open(path: &Path, root: &str, levels: &str) -> Result<Index, Error> {
        let conn = Connection::open(path).map_err(err)?;
        Self::init(conn, root, levels)
    }

    /// An index in memory (tests, `--dry-run` without an index file).
    pub fn in_memory(root: &str, levels: &str) -> Result<Index, Error> {
        Self::init(Connection::open_in_memory().map_err(err)?, root, levels)
    }

    fn init(conn: Connection, root: &str, levels: &str) -> Result<Index, Error> {
        conn.busy_timeout(Duration::from_secs(30)).map_err(err)?;
        // WAL: readers never wait for the writer; NORMAL sync is crash-safe in WAL mode (a crash
        // may lose the last transactions, which only makes the index staler, never corrupt).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS entries(name TEXT PRIMARY KEY, dir TEXT NOT NULL,
                 key BLOB NOT NULL, fold BLOB NOT NULL) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS entries_fold ON entries(fold, name);
             CREATE INDEX IF NOT EXISTS entries_dir ON entries(dir);
             CREATE TABLE IF NOT EXISTS dirs(path TEXT PRIMARY KEY, mtime_ns INTEGER NOT NULL)
                 WITHOUT ROWID;",
        )
        .map_err(err)?;
        let idx = Index { conn };
        let want = [
            ("schema", SCHEMA.to_string()),
            ("root", root.to_owned()),
            ("levels", levels.to_owned()),
        ];
        let mut same = true;
        for (k, v) in &want {
            if idx.meta(k)?.as_deref() != Some(v.as_str()) {
                same = false;
            }
        }
        if !same {
            idx.clear()?;
            for (k, v) in &want {
                idx.set_meta(k, v)?;
            }
        }
        Ok(idx)
    }

    /// A value of the `meta` table.
    pub fn meta(&self, k: &str) -> Result<Option<String>, Error> {
        self.conn
            .query_row("SELECT v FROM meta WHERE k = ?1", [k], |r| r.get(0))
            .optional()
            .map_err(err)
    }

    /// Sets a value of the `meta` table.
    pub fn set_meta(&self, k: &str, v: &str) -> Result<(), Error> {
        self.conn
            .execute("INSERT OR REPLACE INTO meta(k, v) VALUES(?1, ?2)", [k, v])
            .map_err(err)?;
        Ok(())
    }

    /// Removes a value of the `meta` table.
    pub fn remove_meta(&self, k: &str) -> Result<(), Error> {
        self.conn
            .execute("DELETE FROM meta WHERE k = ?1", [k])
            .map_err(err)?;
        Ok(())
    }

    /// Forgets every file and directory.
    pub fn clear(&self) -> Result<(), Error> {
        self.conn
            .execute_batch("DELETE FROM entries; DELETE FROM dirs;")
            .map_err(err)
    }

    /// Starts a transaction (bulk updates are one transaction: one fsync, atomic on a crash).
    pub fn begin(&self) -> Result<(), Error> {
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(err)
    }

    /// Commits the transaction started by [`Index::begin`].
    pub fn commit(&self) -> Result<(), Error> {
        self.conn.execute_batch("COMMIT").map_err(err)
    }

    /// Records that `dir/name` holds `key`.
    pub fn insert(&self, name: &str, dir: &str, key: &[u8]) -> Result<(), Error> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO entries(name, dir, key, fold) VALUES(?1, ?2, ?3, ?4)",
            )
            .and_then(|mut s| s.execute(params![name, dir, key, fold_triplets(key)]))
            .map_err(err)?;
        Ok(())
    }

    /// Forgets the file `name`.
    pub fn remove(&self, name: &str) -> Result<(), Error> {
        self.conn
            .prepare_cached("DELETE FROM entries WHERE name = ?1")
            .and_then(|mut s| s.execute([name]))
            .map_err(err)?;
        Ok(())
    }

    /// The names the index holds for directory `dir`.
    pub fn names_in(&self, dir: &str) -> Result<Vec<String>, Error> {
        let mut s = self
            .conn
            .prepare_cached("SELECT name FROM entries WHERE dir = ?1")
            .map_err(err)?;
        let rows = s.query_map([dir], |r| r.get(0)).map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The modification time recorded for directory `dir`, if it was read before.
    pub fn dir_mtime(&self, dir: &str) -> Result<Option<i64>, Error> {
        self.conn
            .prepare_cached("SELECT mtime_ns FROM dirs WHERE path = ?1")
            .and_then(|mut s| s.query_row([dir], |r| r.get(0)).optional())
            .map_err(err)
    }

    /// Every directory's recorded modification time (one query, for a refresh).
    pub fn dir_mtimes(&self) -> Result<std::collections::HashMap<String, i64>, Error> {
        let mut s = self
            .conn
            .prepare_cached("SELECT path, mtime_ns FROM dirs")
            .map_err(err)?;
        let rows = s
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Records the modification time of directory `dir` as read.
    pub fn set_dir_mtime(&self, dir: &str, mtime_ns: i64) -> Result<(), Error> {
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO dirs(path, mtime_ns) VALUES(?1, ?2)")
            .and_then(|mut s| s.execute(params![dir, mtime_ns]))
            .map_err(err)?;
        Ok(())
    }

    /// Every file whose key equals `key` up to the case of `%xx` triplets.
    pub fn same_key(&self, key: &[u8]) -> Result<Vec<IndexRow>, Error> {
        let mut s = self
            .conn
            .prepare_cached("SELECT name, dir, key FROM entries WHERE fold = ?1")
            .map_err(err)?;
        let rows = s
            .query_map([fold_triplets(key)], |r| {
                Ok(IndexRow {
                    name: r.get(0)?,
                    dir: r.get(1)?,
                    key: r.get(2)?,
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Up to `limit` files whose key starts with `prefix` (up to the case of triplets), in
    /// (folded key, name) order after `after`; call again with the last row's position to
    /// stream a large prefix in bounded memory.
    pub fn prefix_batch(
        &self,
        prefix: &[u8],
        after: Option<(&[u8], &str)>,
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, IndexRow)>, Error> {
        let lo = fold_triplets(prefix);
        let hi = prefix_upper_bound(&lo);
        let (after_fold, after_name) = after.unwrap_or((&[], ""));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let map = |r: &rusqlite::Row<'_>| {
            Ok((
                r.get::<_, Vec<u8>>(3)?,
                IndexRow {
                    name: r.get(0)?,
                    dir: r.get(1)?,
                    key: r.get(2)?,
                },
            ))
        };
        let sql_hi = "SELECT name, dir, key, fold FROM entries WHERE fold >= ?1 AND fold < ?2 \
                      AND (fold, name) > (?3, ?4) ORDER BY fold, name LIMIT ?5";
        let sql_open = "SELECT name, dir, key, fold FROM entries WHERE fold >= ?1 \
                        AND (fold, name) > (?2, ?3) ORDER BY fold, name LIMIT ?4";
        let rows = match hi {
            Some(hi) => {
                let mut s = self.conn.prepare_cached(sql_hi).map_err(err)?;
                let r = s
                    .query_map(params![lo, hi, after_fold, after_name, limit], map)
                    .map_err(err)?
                    .collect::<Result<Vec<_>, _>>();
                r
            }
            None => {
                let mut s = self.conn.prepare_cached(sql_open).map_err(err)?;
                let r = s
                    .query_map(params![lo, after_fold, after_name, limit], map)
                    .map_err(err)?
                    .collect::<Result<Vec<_>, _>>();
                r
            }
        };
        rows.map_err(err)
    }

    /// How many files the index holds.
    pub fn len(&self) -> Result<u64, Error> {
        self.conn
            .query_row("SELECT count(*) FROM entries", [], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(err)
    }

    /// Whether the index holds no file.
    pub fn is_empty(&self) -> Result<bool, Error> {
        Ok(self.len()? == 0)
    }
}

/// The smallest byte string greater than every string starting with `p` (`None` when `p` is
/// all `0xff`, i.e. no upper bound).
fn prefix_upper_bound(p: &[u8]) -> Option<Vec<u8>> {
    let mut hi = p.to_vec();
    while let Some(last) = hi.pop() {
        if last < 0xff {
            hi.push(last + 1);
            return Some(hi);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_lookup_by_folded_key_and_prefix() {
        let ix = Index::in_memory("/c", "1:2").unwrap();
        ix.begin().unwrap();
        ix.insert("a1", "1/a", b"httpsGETx/p/%e6%b0/").unwrap();
        ix.insert("a2", "2/a", b"httpsGETx/p/%E6%B0/").unwrap();
        ix.insert("a3", "3/a", b"httpsGETx/p/%e6%b0/").unwrap();
        ix.insert("b1", "1/b", b"httpsGETx/blog/").unwrap();
        ix.insert("b2", "1/b", b"httpsGETx/blog/x?y").unwrap();
        ix.insert("b3", "1/b", b"httpsGETx/blogx").unwrap();
        ix.insert("c1", "1/c", b"httpsHEADx/blog/").unwrap();
        ix.commit().unwrap();
        let mut same: Vec<String> = ix
            .same_key(b"httpsGETx/p/%E6%b0/")
            .unwrap()
            .into_iter()
            .map(|r| r.name)
            .collect();
        same.sort();
        assert_eq!(same, ["a1", "a2", "a3"]);
        let names = |p: &[u8]| -> Vec<String> {
            let mut out = Vec::new();
            let mut after: Option<(Vec<u8>, String)> = None;
            loop {
                let batch = ix
                    .prefix_batch(
                        p,
                        after.as_ref().map(|(f, n)| (f.as_slice(), n.as_str())),
                        1,
                    )
                    .unwrap();
                let Some((f, last)) = batch.last().cloned() else {
                    break;
                };
                out.extend(batch.into_iter().map(|(_, r)| r.name));
                after = Some((f, last.name));
            }
            out
        };
        assert_eq!(names(b"httpsGETx/blog/"), ["b1", "b2"]);
        assert_eq!(names(b"httpsGETx/blog"), ["b1", "b2", "b3"]);
        assert_eq!(names(b"").len(), 7);
        let mut in_dir = ix.names_in("1/b").unwrap();
        in_dir.sort();
        assert_eq!(in_dir, ["b1", "b2", "b3"]);
        ix.remove("b1").unwrap();
        assert_eq!(names(b"httpsGETx/blog/"), ["b2"]);
        assert_eq!(ix.dir_mtime("1/b").unwrap(), None);
        ix.set_dir_mtime("1/b", 42).unwrap();
        assert_eq!(ix.dir_mtime("1/b").unwrap(), Some(42));
        assert_eq!(ix.dir_mtimes().unwrap().get("1/b"), Some(&42));
        assert_eq!(ix.len().unwrap(), 6);
        assert_eq!(prefix_upper_bound(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_upper_bound(b"\xff"), None);
    }

    #[test]
    fn an_index_for_another_root_is_emptied() {
        let dir = std::env::temp_dir().join(format!("nginx-cache-ix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("ix.sqlite");
        let ix = Index::open(&p, "/c", "1:2").unwrap();
        ix.insert("a", "", b"k").unwrap();
        drop(ix);
        assert_eq!(Index::open(&p, "/c", "1:2").unwrap().len().unwrap(), 1);
        assert_eq!(Index::open(&p, "/c", "2").unwrap().len().unwrap(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
