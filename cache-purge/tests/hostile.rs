//! The `cache-purge` binary on fixture caches in nginx's real on-disk format, including hostile
//! contents. As root (CI) the binary is run with `--owner nobody` and drops to it; the fixtures
//! are chowned to that user. As another user, that user owns everything.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nginx_cache::{hex, md5, md5_hex, variant_hash, Header, Levels};

const NOBODY: u32 = 65534;

fn euid() -> u32 {
    fs::metadata("/proc/self").unwrap().uid()
}

struct Fixture {
    dir: PathBuf,
    root: PathBuf,
    index: PathBuf,
    owner: u32,
    levels: Levels,
}

impl Fixture {
    fn new(name: &str) -> Fixture {
        let dir = std::env::temp_dir().join(format!("cache-purge-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let root = dir.join("cache");
        let index = dir.join("index");
        let owner = if euid() == 0 { NOBODY } else { euid() };
        for d in [&root, &index] {
            fs::create_dir(d).unwrap();
            fs::set_permissions(d, fs::Permissions::from_mode(0o700)).unwrap();
            chown(d, owner);
        }
        Fixture {
            dir,
            root,
            index,
            owner,
            levels: Levels::parse("1:2").unwrap(),
        }
    }

    /// Writes an entry for `key` under `name` (default: md5 of the key) the way nginx does.
    fn put_named(&self, name: &str, key: &str, header: Header, body: &str) -> PathBuf {
        let path = self.levels.file_path(&self.root, name);
        self.mkdirs(path.parent().unwrap());
        let bytes = header.encode(
            key.as_bytes(),
            format!("Status: 200 OK\r\n\r\n{body}").as_bytes(),
        );
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        chown(&path, self.owner);
        path
    }

    fn put(&self, key: &str) -> PathBuf {
        self.put_named(&md5_hex(key.as_bytes()), key, Header::default(), "<html>")
    }

    fn mkdirs(&self, dir: &Path) {
        let rel = dir.strip_prefix(&self.root).unwrap();
        let mut cur = self.root.clone();
        for c in rel.components() {
            cur.push(c);
            if !cur.exists() {
                fs::create_dir(&cur).unwrap();
                fs::set_permissions(&cur, fs::Permissions::from_mode(0o700)).unwrap();
                chown(&cur, self.owner);
            }
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cache-purge"));
        cmd.arg("--cache-path").arg(&self.root);
        cmd.arg("--index-dir").arg(&self.index);
        if euid() == 0 {
            cmd.args(["--owner", "nobody"]);
        }
        cmd.args(args).stdin(Stdio::null());
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A FIFO must never block a purge: give up (and fail) rather than hang the test run.
        let start = Instant::now();
        let id = child.id();
        let out = std::thread::spawn(move || child.wait_with_output().unwrap());
        while !out.is_finished() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "cache-purge {args:?} hangs (pid {id})"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        out.join().unwrap()
    }

    fn count_entries(&self) -> usize {
        fn walk(d: &Path, n: &mut usize) {
            for e in fs::read_dir(d).unwrap() {
                let e = e.unwrap();
                let t = e.file_type().unwrap();
                if t.is_dir() {
                    walk(&e.path(), n);
                } else if t.is_file() {
                    *n += 1;
                }
            }
        }
        let mut n = 0;
        walk(&self.root, &mut n);
        n
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), None).unwrap();
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}stderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const URL_KEY: &str = "httpsGETexample.com/p/%e6%b0%b4/";

#[test]
fn exact_purge_takes_get_head_and_both_hex_cases_and_nothing_else() {
    for index in [true, false] {
        let f = Fixture::new(&format!("exact-{index}"));
        let gone = [
            f.put(URL_KEY),
            f.put("httpsGETexample.com/p/%E6%B0%B4/"),
            f.put("httpsHEADexample.com/p/%e6%b0%b4/"),
            f.put("httpsHEADexample.com/p/%E6%B0%B4/"),
        ];
        let kept = [
            f.put("httpsGETexample.com/p/%e6%b0%b4/x"),
            f.put("httpGETexample.com/p/%e6%b0%b4/"),
            f.put("httpsGETexample.org/p/%e6%b0%b4/"),
            f.put("httpsGETexample.com/?p=1"),
        ];
        let mixed = f.put("httpsGETexample.com/p/%e6%B0%b4/");
        let mut args = vec!["--json", "https://example.com/p/%e6%b0%b4/"];
        if !index {
            args.insert(0, "--no-index");
        }
        let o = f.run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        for p in &gone {
            assert!(!p.exists(), "{} still there\n{}", p.display(), text(&o));
        }
        for p in &kept {
            assert!(p.exists(), "{} deleted\n{}", p.display(), text(&o));
        }
        // Mixed-case forms are only found through the index (they are not computable).
        assert_eq!(mixed.exists(), !index, "{}", text(&o));
        let v = &json_lines(&o)[0];
        assert_eq!(v["status"], "purged");
        assert_eq!(v["kind"], "url");
        assert_eq!(v["files"], if index { 5 } else { 4 });
        assert_eq!(v["lookup"], if index { "index" } else { "computed" });
        assert!(
            v["keys"].as_array().unwrap().iter().any(|k| k == URL_KEY),
            "{v}"
        );
        // Purging again: not cached, exit 0.
        let o = f.run(
            &args[..args.len() - 1]
                .iter()
                .copied()
                .filter(|a| *a != "--json")
                .chain(["https://example.com/p/%e6%b0%b4/"])
                .collect::<Vec<_>>(),
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(
            text(&o).contains("not cached https://example.com/p/%e6%b0%b4/"),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn query_strings_trailing_slashes_and_dot_segments() {
    let f = Fixture::new("query");
    let p1 = f.put("httpsGETexample.com/?p=1");
    let p2 = f.put("httpsGETexample.com/?p=2");
    let about = f.put("httpsGETexample.com/about");
    let about_slash = f.put("httpsGETexample.com/about/");
    let b = f.put("httpsGETexample.com/b/");
    let o = f.run(&["https://example.com/?p=1", "https://example.com/about/"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!p1.exists() && p2.exists() && about.exists() && !about_slash.exists());
    // `..` and `%2e%2e` resolve the way a browser resolves them: to /b/, never to a path.
    for u in [
        "https://example.com/a/../b/",
        "https://example.com/a/%2e%2e/b/",
    ] {
        let b = f.put("httpsGETexample.com/b/");
        let o = f.run(&["--json", u]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(!b.exists(), "{u}: {}", text(&o));
        assert_eq!(json_lines(&o)[0]["keys"][0], "httpsGETexample.com/b/");
    }
    let _ = b;
    // A non-default port keeps $host without it.
    let port = f.put("httpGETlocalhost/x");
    let o = f.run(&["http://localhost:8080/x"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!port.exists());
}

#[test]
fn every_vary_variant_goes_with_and_without_index() {
    for index in [true, false] {
        let f = Fixture::new(&format!("vary-{index}"));
        let key = "httpGETexample.com/vary/";
        let main = md5(key.as_bytes());
        let vary = b"Accept-Encoding".to_vec();
        let var = |ae: Option<&str>| {
            let h: Vec<(&str, &str)> = ae.map(|a| ("Accept-Encoding", a)).into_iter().collect();
            variant_hash(&main, &vary, &h)
        };
        let hdr = |v: [u8; 16]| Header {
            vary: vary.clone(),
            variant: v,
            ..Header::default()
        };
        let files = [
            f.put_named(&hex(&main), key, hdr(var(None)), "plain"),
            f.put_named(
                &hex(&var(Some("gzip, deflate, br"))),
                key,
                hdr(var(Some("gzip, deflate, br"))),
                "br",
            ),
            f.put_named(
                &hex(&var(Some("gzip, deflate, br, zstd"))),
                key,
                hdr(var(Some("gzip, deflate, br, zstd"))),
                "zstd",
            ),
        ];
        assert_eq!(
            files[1].strip_prefix(&f.root).unwrap(),
            Path::new("d/c8/984603f6afb657a791acd0a8c2ae0c8d")
        );
        let other = f.put("httpGETexample.com/vary/other");
        let mut args = vec!["--json", "http://example.com/vary/"];
        if !index {
            args.insert(0, "--no-index");
        }
        let o = f.run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        for p in &files {
            assert!(!p.exists(), "{} left\n{}", p.display(), text(&o));
        }
        assert!(other.exists());
        let v = &json_lines(&o)[0];
        assert_eq!(v["files"], 3);
        assert_eq!(v["lookup"], if index { "index" } else { "scan" });
    }
}

#[test]
fn prefix_purge_with_and_without_index() {
    for index in [true, false] {
        let f = Fixture::new(&format!("prefix-{index}"));
        let gone = [
            f.put("httpsGETexample.com/blog/"),
            f.put("httpsGETexample.com/blog/x"),
            f.put("httpsGETexample.com/blog/?q=1"),
            f.put("httpsHEADexample.com/blog/y"),
            f.put("httpsGETexample.com/blog/%E6%B0%B4/"),
        ];
        let kept = [
            f.put("httpsGETexample.com/blogx"),
            f.put("httpsGETexample.com/"),
            f.put("httpsGETexample.org/blog/"),
        ];
        let mut args = vec!["--json", "--prefix", "https://example.com/blog/"];
        if !index {
            args.insert(0, "--no-index");
        }
        let o = f.run(&args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        for p in &gone {
            assert!(!p.exists(), "{} left\n{}", p.display(), text(&o));
        }
        for p in &kept {
            assert!(p.exists(), "{} deleted\n{}", p.display(), text(&o));
        }
        let v = &json_lines(&o)[0];
        assert_eq!(
            (v["kind"].as_str(), v["files"].as_u64()),
            (Some("prefix"), Some(5)),
            "{v}"
        );
    }
}

#[test]
fn purge_all_keeps_temp_files_temp_dirs_and_level_dirs() {
    let f = Fixture::new("all");
    for i in 0..50 {
        f.put(&format!("httpsGETexample.com/{i}"));
    }
    let entry = f.put("httpsGETexample.com/in-flight");
    let temp = PathBuf::from(format!("{}.0000000042", entry.display()));
    fs::write(&temp, b"partial").unwrap();
    chown(&temp, f.owner);
    let temp_dir = f.root.join("fastcgi_temp");
    fs::create_dir(&temp_dir).unwrap();
    chown(&temp_dir, f.owner);
    let in_temp_dir = temp_dir.join("0000000001");
    fs::write(&in_temp_dir, b"x").unwrap();
    chown(&in_temp_dir, f.owner);
    let o = f.run(&["--dry-run", "--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("would purge all (51 files, walk)"),
        "{}",
        text(&o)
    );
    assert_eq!(f.count_entries(), 53);
    let o = f.run(&["--all", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(json_lines(&o)[0]["files"], 51);
    assert_eq!(f.count_entries(), 2);
    assert!(temp.exists() && in_temp_dir.exists() && entry.parent().unwrap().is_dir());
}

#[test]
fn hostile_symlinks_fifo_hardlink_and_foreign_owner_are_left_alone() {
    for openat2 in [true, false] {
        let f = Fixture::new(&format!("hostile-{openat2}"));
        let outside = f.dir.join("outside");
        fs::create_dir(&outside).unwrap();
        // A level directory replaced by a symlink to a directory outside the cache, holding a
        // file named like the entry of /victim/.
        let victim_key = "httpsGETexample.com/victim/";
        let vname = md5_hex(victim_key.as_bytes());
        let vdirs = f.levels.dirs(&vname);
        let target = outside.join(&vname);
        fs::write(
            &target,
            Header::default().encode(victim_key.as_bytes(), b""),
        )
        .unwrap();
        chown(&target, f.owner);
        chown(&outside, f.owner);
        f.mkdirs(&f.root.join(vdirs[0]));
        symlink(&outside, f.root.join(vdirs[0]).join(vdirs[1])).unwrap();
        // An entry name that is a symlink to a file outside.
        let lkey = "httpsGETexample.com/link/";
        let lpath = f.levels.file_path(&f.root, &md5_hex(lkey.as_bytes()));
        f.mkdirs(lpath.parent().unwrap());
        let ltarget = outside.join("linked");
        fs::write(&ltarget, Header::default().encode(lkey.as_bytes(), b"")).unwrap();
        chown(&ltarget, f.owner);
        symlink(&ltarget, &lpath).unwrap();
        // A FIFO named like an entry.
        let fkey = "httpsGETexample.com/fifo/";
        let fpath = f.levels.file_path(&f.root, &md5_hex(fkey.as_bytes()));
        f.mkdirs(fpath.parent().unwrap());
        let st = Command::new("mkfifo").arg(&fpath).status().unwrap();
        assert!(st.success());
        chown(&fpath, f.owner);
        // A hard link to a file outside (two links).
        let hkey = "httpsGETexample.com/hard/";
        let hpath = f.levels.file_path(&f.root, &md5_hex(hkey.as_bytes()));
        f.mkdirs(hpath.parent().unwrap());
        let htarget = outside.join("hard");
        fs::write(&htarget, Header::default().encode(hkey.as_bytes(), b"")).unwrap();
        chown(&htarget, f.owner);
        fs::hard_link(&htarget, &hpath).unwrap();
        // An entry owned by someone else.
        let okey = "httpsGETexample.com/foreign/";
        let opath = f.put(okey);
        chown(&opath, 4242);
        let urls: Vec<String> = ["victim", "link", "fifo", "hard", "foreign"]
            .iter()
            .map(|p| format!("https://example.com/{p}/"))
            .collect();
        let mut args: Vec<&str> = vec!["--json"];
        if !openat2 {
            args.push("--no-openat2");
        }
        args.extend(urls.iter().map(String::as_str));
        let o = f.run(&args);
        assert_eq!(o.status.code(), Some(4), "{}", text(&o));
        for v in json_lines(&o) {
            assert_eq!(v["files"], 0, "{v}");
            assert!(!v["skipped"].as_array().unwrap().is_empty(), "{v}");
        }
        assert!(target.exists() && ltarget.exists() && htarget.exists());
        assert!(fs::symlink_metadata(&lpath)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fpath.exists() && hpath.exists() && opath.exists());
        let t = text(&o);
        for want in ["symlink", "FIFO", "hard links", "owned by uid 4242"] {
            assert!(t.contains(want), "{want}: {t}");
        }
        // Purge-all and prefix walks never follow the level symlink either.
        let o = f.run(&["--all"]);
        assert_eq!(o.status.code(), Some(4), "{}", text(&o));
        assert!(target.exists() && ltarget.exists() && htarget.exists() && opath.exists());
        let o = f.run(&["--no-index", "--prefix", "https://example.com/"]);
        assert_eq!(o.status.code(), Some(4), "{}", text(&o));
        assert!(target.exists());
    }
}

#[test]
fn etag_key_forgery_is_attributed_to_the_real_key() {
    for index in [true, false] {
        let f = Fixture::new(&format!("forgery-{index}"));
        // The upstream sent `ETag: KEY: https` (10 bytes) and a body line naming /victim/.
        let real = "httpsGETexample.com/real/";
        let forged = f.put_named(
            &md5_hex(real.as_bytes()),
            real,
            Header {
                etag: b"KEY: https".to_vec(),
                vary: b"Accept-Encoding".to_vec(),
                ..Header::default()
            },
            "\nKEY: httpsGETexample.com/victim/\n",
        );
        let mut base: Vec<&str> = vec![];
        if !index {
            base.push("--no-index");
        }
        for args in [
            vec!["https://example.com/victim/"],
            vec!["--prefix", "https://example.com/victim"],
            vec!["--prefix", "https://"],
        ] {
            let mut a = base.clone();
            a.extend(args.iter().copied());
            let o = f.run(&a);
            assert!(
                o.status.code() == Some(0) || o.status.code() == Some(2),
                "{}",
                text(&o)
            );
            assert!(
                forged.exists(),
                "{args:?} deleted the forged file\n{}",
                text(&o)
            );
        }
        let mut a = base.clone();
        a.push("https://example.com/real/");
        let o = f.run(&a);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(!forged.exists());
    }
}

#[test]
fn refused_roots_and_bad_input_delete_nothing() {
    let f = Fixture::new("refuse");
    let kept = f.put("httpsGETexample.com/");
    let bin = env!("CARGO_BIN_EXE_cache-purge");
    let as_owner = |args: &[&str]| {
        let mut c = Command::new(bin);
        if euid() == 0 {
            c.args(["--owner", "nobody"]);
        }
        c.args(["--index-dir", f.index.to_str().unwrap()]);
        c.args(args).output().unwrap()
    };
    let link = f.dir.join("link");
    symlink(&f.root, &link).unwrap();
    let wpdir = f.dir.join("site");
    fs::create_dir(&wpdir).unwrap();
    fs::write(wpdir.join("wp-config.php"), b"<?php").unwrap();
    chown(&wpdir, f.owner);
    let open = f.dir.join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let under_open = open.join("cache");
    fs::create_dir(&under_open).unwrap();
    chown(&under_open, f.owner);
    let foreign = f.dir.join("foreign");
    fs::create_dir(&foreign).unwrap();
    chown(&foreign, 4242);
    let cases: Vec<(Vec<String>, i32, &str)> = vec![
        (
            vec![
                "--cache-path".into(),
                "relative/cache".into(),
                "--all".into(),
            ],
            3,
            "not an absolute path",
        ),
        (
            vec!["--cache-path".into(), "/".into(), "--all".into()],
            3,
            "refusing /",
        ),
        (
            vec![
                "--cache-path".into(),
                link.display().to_string(),
                "--all".into(),
            ],
            3,
            "is a symlink",
        ),
        (
            vec![
                "--cache-path".into(),
                format!("{}/../cache", f.root.display()),
                "--all".into(),
            ],
            3,
            "\"..\"",
        ),
        (
            vec![
                "--cache-path".into(),
                wpdir.display().to_string(),
                "--all".into(),
            ],
            3,
            "wp-config.php",
        ),
        (
            vec![
                "--cache-path".into(),
                under_open.display().to_string(),
                "--all".into(),
            ],
            3,
            "writable by others and not sticky",
        ),
        (
            vec![
                "--cache-path".into(),
                foreign.display().to_string(),
                "--all".into(),
            ],
            3,
            "not the cache owner",
        ),
        (
            vec![
                "--cache-path".into(),
                f.root.display().to_string(),
                "ftp://example.com/".into(),
            ],
            2,
            "unsupported URL scheme",
        ),
        (
            vec![
                "--cache-path".into(),
                f.root.display().to_string(),
                "/relative".into(),
            ],
            2,
            "invalid URL",
        ),
        (
            vec![
                "--cache-path".into(),
                f.root.display().to_string(),
                "https://example.com/".into(),
                "notaurl".into(),
            ],
            2,
            "invalid URL",
        ),
        (
            vec![
                "--cache-path".into(),
                f.root.display().to_string(),
                "--cache-key".into(),
                "$scheme$foo".into(),
                "https://example.com/".into(),
            ],
            2,
            "unsupported variable $foo",
        ),
        (
            vec![
                "--cache-path".into(),
                f.root.display().to_string(),
                "--cache-key".into(),
                "$host$request_uri$cookie_x".into(),
                "https://example.com/".into(),
            ],
            2,
            "$cookie_x",
        ),
        (
            vec![
                "--cache-path".into(),
                f.root.display().to_string(),
                "--levels".into(),
                "3".into(),
                "--all".into(),
            ],
            2,
            "--levels",
        ),
        (
            vec!["--cache-path".into(), f.root.display().to_string()],
            2,
            "nothing to do",
        ),
    ];
    for (args, code, msg) in cases {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = as_owner(&a);
        assert_eq!(o.status.code(), Some(code), "{args:?}\n{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(msg), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(kept.exists(), "{args:?} deleted");
    }
}

#[test]
fn root_needs_an_owner_and_drops_to_it() {
    let f = Fixture::new("root");
    let kept = f.put("httpsGETexample.com/");
    let bin = env!("CARGO_BIN_EXE_cache-purge");
    if euid() == 0 {
        let o = Command::new(bin)
            .args(["--cache-path", f.root.to_str().unwrap(), "--all"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        assert!(text(&o).contains("refusing to run as root"), "{}", text(&o));
        let o = Command::new(bin)
            .args([
                "--owner",
                "root",
                "--cache-path",
                f.root.to_str().unwrap(),
                "--all",
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "{}", text(&o));
        assert!(kept.exists());
        // A root-owned file in a level directory: the dropped process cannot delete it, and
        // says so instead of escalating.
        let rootfile = f.put("httpsGETexample.com/rootfile");
        chown(&rootfile, 0);
        let o = f.run(&["https://example.com/rootfile"]);
        assert_eq!(o.status.code(), Some(4), "{}", text(&o));
        assert!(rootfile.exists());
    }
    let o = f.run(&["--all"]);
    assert!(matches!(o.status.code(), Some(0 | 4)), "{}", text(&o));
    assert!(!kept.exists());
}

#[test]
fn index_refresh_import_and_interrupted_purge_all() {
    let f = Fixture::new("index");
    let a = f.put("httpsGETexample.com/a/");
    let o = f.run(&["--index-rebuild"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("1 entries added"), "{}", text(&o));
    // With --index-no-refresh a file stored after the last refresh is not seen...
    let late = f.put("httpsGETexample.com/a/%e6%B0%b4");
    let o = f.run(&["--index-no-refresh", "https://example.com/a/%E6%B0%B4"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(late.exists(), "{}", text(&o));
    fs::remove_file(&late).unwrap();
    // ...by default, a mixed-case form written after the rebuild is found by the refresh.
    let mixed = f.put("httpsGETexample.com/a/%e6%B0%b4");
    let o = f.run(&["--json", "https://example.com/a/%E6%B0%B4"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!mixed.exists(), "{}", text(&o));
    // Import: only lines whose file really holds the key become rows.
    let b = f.put("httpsGETexample.com/b/");
    let lines = format!(
        "{{\"url\":\"https://example.com/b/\",\"key\":\"httpsGETexample.com/b/\",\"md5\":\"{}\"}}\n{{\"md5\":\"{}\"}}\n",
        md5_hex(b"httpsGETexample.com/b/"),
        md5_hex(b"nothing")
    );
    let file = f.dir.join("idx.jsonl");
    fs::write(&file, lines).unwrap();
    let o = f.run(&["--index-import", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("imported 1 entries"), "{}", text(&o));
    // A purge-all that was interrupted (its mark left in the index) is finished by the next run.
    let ix_file = cache_purge::index_file(&f.index, &f.root);
    let ix = nginx_cache::index::Index::open(&ix_file, &f.root.to_string_lossy(), "1:2").unwrap();
    ix.set_meta("purge_all", "1").unwrap();
    drop(ix);
    let o = f.run(&["https://example.com/nothing/"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("finished an interrupted purge-all (2 files)"),
        "{}",
        text(&o)
    );
    assert!(!a.exists() && !b.exists());
}

#[test]
fn help_lists_exit_codes_and_man_page_renders() {
    let bin = env!("CARGO_BIN_EXE_cache-purge");
    let o = Command::new(bin).arg("--help").output().unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(
        t.contains("Exit codes:") && t.contains("4  done, but unsafe entries"),
        "{t}"
    );
    let o = Command::new(bin).arg("--generate-man").output().unwrap();
    let t = String::from_utf8_lossy(&o.stdout);
    assert!(t.starts_with(".ie") || t.contains(".TH cache-purge"), "{t}");
    assert!(t.contains("Exit codes"), "{t}");
}

#[test]
fn dot_is_the_current_directory_as_safexec_hands_it_over() {
    let f = Fixture::new("dot");
    let a = f.put("httpsGETexample.com/a/");
    let b = f.put("httpsGETexample.com/b/");
    let bin = env!("CARGO_BIN_EXE_cache-purge");
    let mut c = Command::new(bin);
    if euid() == 0 {
        c.args(["--owner", "nobody"]);
    }
    let o = c
        .args([
            "--cache-path",
            ".",
            "--index-dir",
            f.index.to_str().unwrap(),
        ])
        .arg("https://example.com/a/")
        .current_dir(&f.root)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!a.exists() && b.exists());
    // The index is the one of the absolute path.
    let ix = cache_purge::index_file(&f.index, &f.root);
    assert!(ix.exists(), "{}", ix.display());
    // Other relative paths stay refused.
    let o = Command::new(bin)
        .args(["--cache-path", "cache", "--all"])
        .current_dir(&f.dir)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(b.exists());
}

#[test]
fn killed_purge_all_is_finished_by_the_next_run_and_parallel_purges_agree() {
    let f = Fixture::new("crash");
    for i in 0..3000 {
        f.put(&format!("httpsGETexample.com/{i}/"));
    }
    let o = f.run(&["--index-rebuild"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // SIGKILL a purge-all a few milliseconds in.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cache-purge"));
    cmd.arg("--cache-path")
        .arg(&f.root)
        .arg("--index-dir")
        .arg(&f.index);
    if euid() == 0 {
        cmd.args(["--owner", "nobody"]);
    }
    let mut child = cmd.arg("--all").stdout(Stdio::null()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    let _ = child.kill();
    let _ = child.wait();
    let left = f.count_entries();
    // Every file left is a complete entry (nothing truncated), and the next run of any kind
    // finishes the purge-all (when the kill landed before the mark was cleared).
    let o = f.run(&["https://example.com/nothing/"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let finished = text(&o).contains("finished an interrupted purge-all");
    if left > 0 && left < 3000 {
        // Something was deleted, so the pending mark had been written before: it must finish.
        assert!(finished, "{left} left\n{}", text(&o));
    }
    if !finished && left == 3000 {
        // Killed before its first unlink (a slow start): nothing to finish; purge it now.
        assert_eq!(f.run(&["--all"]).status.code(), Some(0));
    }
    assert_eq!(f.count_entries(), 0);

    // Ten purges of the same URLs at once, with the index: all succeed, every file goes once.
    let keys: Vec<String> = (0..40)
        .map(|i| format!("httpsGETexample.com/p/{i}/"))
        .collect();
    let files: Vec<PathBuf> = keys.iter().map(|k| f.put(k)).collect();
    let urls: Vec<String> = (0..40)
        .map(|i| format!("https://example.com/p/{i}/"))
        .collect();
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let mut c = Command::new(env!("CARGO_BIN_EXE_cache-purge"));
            c.arg("--cache-path")
                .arg(&f.root)
                .arg("--index-dir")
                .arg(&f.index);
            if euid() == 0 {
                c.args(["--owner", "nobody"]);
            }
            c.arg("--json").args(&urls);
            std::thread::spawn(move || c.output().unwrap())
        })
        .collect();
    let mut total = 0;
    for h in handles {
        let o = h.join().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        total += json_lines(&o)
            .iter()
            .map(|v| v["files"].as_u64().unwrap())
            .sum::<u64>();
    }
    assert_eq!(total, 40, "each file counted by exactly one purge");
    assert!(files.iter().all(|p| !p.exists()));
}
