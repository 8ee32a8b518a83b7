//! `cache-purge` end to end on the real nginx + PHP-FPM stack: after a preload, purges of single
//! pages (ASCII, non-ASCII written with lower-case `%xx` and purged as an address bar writes it,
//! a query string, GET and HEAD, on a non-default port with `$host` in the key), a prefix and
//! everything; the next visitor is a MISS and is stored again; another site's cache is left
//! alone; a Vary site loses every variant; exact purges remove the same files as the real
//! `ngx_cache_purge` module; the site user purges its own root through the setuid `safexec`
//! and nothing else.

use std::collections::BTreeSet;
use std::fs;
use std::process::{Command, Output};

use e2e::purge::{
    as_owner, cache_status, curl, entries, file_of, key_of, patch_nginx, target_of, wait_exists,
    www_data, SafexecView,
};
use e2e::{bins, npp, Stack};
use serde_json::Value;

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// An ASCII page two segments deep, and a page whose slug has lower-case `%xx`.
fn pick_pages(stack: &Stack) -> (String, String) {
    let urls = stack.urls();
    let ascii = urls
        .iter()
        .find(|u| !u.contains('%') && target_of(stack, u).matches('/').count() >= 3)
        .expect("an ASCII page")
        .clone();
    let non_ascii = urls
        .iter()
        .find(|u| u.contains('%'))
        .expect("a %xx page")
        .clone();
    assert_eq!(
        non_ascii,
        norm_lower(&non_ascii),
        "sitemap writes lower-case hex"
    );
    (ascii, non_ascii)
}

fn norm_lower(s: &str) -> String {
    recase(s, false)
}

fn norm_upper(s: &str) -> String {
    recase(s, true)
}

fn recase(s: &str, upper: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            out.push(b'%');
            for c in &b[i + 1..i + 3] {
                out.push(if upper {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                });
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// cache-preload as www-data over the whole site, with `--index-out`.
fn preload(stack: &Stack) -> std::path::PathBuf {
    let index = stack.dir().join("preload-index.jsonl");
    fs::write(&index, "").unwrap();
    let w = www_data();
    Command::new("chown")
        .arg("www-data")
        .arg(&index)
        .status()
        .unwrap();
    let out = Command::new("/usr/bin/setpriv")
        .args(w.setpriv().iter().skip(1))
        .arg(&bins().cache_preload_built)
        .args(["--no-progress", "--reject-regex", npp::REJECT_REGEX])
        .arg("--cache-path")
        .arg(stack.cache_dir())
        .arg("--index-out")
        .arg(&index)
        .arg(stack.base_url())
        .output()
        .unwrap();
    // 8 is wget's "server issued an error response": the site links a few deliberate 404s.
    assert!(
        matches!(out.status.code(), Some(0 | 8)),
        "preload: {}",
        text(&out)
    );
    assert!(
        fs::metadata(&index).unwrap().len() > 0,
        "no --index-out lines"
    );
    index
}

#[test]
fn single_pages_prefix_and_all_after_a_preload() {
    let stack = Stack::start();
    let cache = stack.cache_dir();
    let cache2 = patch_nginx(&stack);
    let index = preload(&stack);
    let (ascii, non_ascii) = pick_pages(&stack);
    // The preload's --index-out reaches the owner's index through --index-import.
    let o = as_owner(&stack, &["--index-import", index.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("index: imported"), "{}", text(&o));
    // Another site on the same nginx, with its own cache.
    for p in ["/", "/about/", "/contact/"] {
        curl(
            &stack,
            "GET",
            &format!("{}{}", stack.base_url().trim_end_matches('/'), p),
            &["Host: other.test"],
        );
    }
    let other_before = entries(&cache2);
    assert!(!other_before.is_empty(), "the other site caches");
    // A query-string page and a HEAD entry.
    let query = format!("{ascii}?ref=e2e");
    assert_eq!(cache_status(&stack, "GET", &query, &[]), "MISS");
    assert_eq!(cache_status(&stack, "HEAD", &ascii, &[]), "MISS");
    let files = [
        file_of(&cache, &key_of(&stack, "GET", &target_of(&stack, &ascii))),
        file_of(&cache, &key_of(&stack, "HEAD", &target_of(&stack, &ascii))),
        file_of(
            &cache,
            &key_of(&stack, "GET", &target_of(&stack, &non_ascii)),
        ),
        file_of(&cache, &key_of(&stack, "GET", &target_of(&stack, &query))),
    ];
    for f in &files {
        assert!(wait_exists(f), "{} not cached", f.display());
    }
    let neighbour = stack
        .urls()
        .into_iter()
        .find(|u| *u != ascii && *u != non_ascii && !u.contains('%'))
        .unwrap();
    let neighbour_file = file_of(
        &cache,
        &key_of(&stack, "GET", &target_of(&stack, &neighbour)),
    );
    assert!(neighbour_file.exists());

    // Exact purges: the non-ASCII page as an address bar sends it (upper-case hex).
    let upper = norm_upper(&non_ascii);
    assert_ne!(upper, non_ascii);
    let o = as_owner(&stack, &["--json", &ascii, &upper, &query]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let lines = json(&o);
    assert_eq!(lines.len(), 3, "{}", text(&o));
    for l in &lines {
        assert_eq!(l["status"], "purged", "{l}");
    }
    assert_eq!(lines[0]["files"], 2, "GET and HEAD: {}", lines[0]);
    for f in &files {
        assert!(!f.exists(), "{} still there\n{}", f.display(), text(&o));
    }
    assert!(neighbour_file.exists(), "a neighbour was purged");
    // The next visitor is a MISS, the page is stored again, then served from the cache.
    for u in [&ascii, &non_ascii] {
        assert_eq!(cache_status(&stack, "GET", u, &[]), "MISS", "{u}");
        let f = file_of(&cache, &key_of(&stack, "GET", &target_of(&stack, u)));
        assert!(wait_exists(&f), "{u} not stored again");
        assert_eq!(cache_status(&stack, "GET", u, &[]), "HIT", "{u}");
    }

    // A prefix: every page under the first path segment of the ASCII page.
    let t = target_of(&stack, &ascii);
    let seg = format!("/{}/", t.split('/').nth(1).unwrap());
    let prefix = format!("{}{}", stack.base_url().trim_end_matches('/'), seg);
    let under: Vec<String> = stack
        .urls()
        .into_iter()
        .filter(|u| u.starts_with(&prefix))
        .collect();
    let outside: Vec<String> = stack
        .urls()
        .into_iter()
        .filter(|u| !u.starts_with(&prefix))
        .collect();
    assert!(!under.is_empty() && !outside.is_empty());
    let o = as_owner(&stack, &["--json", "--prefix", &prefix]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = &json(&o)[0];
    assert!(v["files"].as_u64().unwrap() >= under.len() as u64, "{v}");
    for u in &under {
        let f = file_of(&cache, &key_of(&stack, "GET", &target_of(&stack, u)));
        assert!(!f.exists(), "{u} survived the prefix purge");
    }
    let kept = outside
        .iter()
        .filter(|u| file_of(&cache, &key_of(&stack, "GET", &target_of(&stack, u))).exists())
        .count();
    assert!(
        kept + 5 >= outside.len(),
        "prefix purge took pages outside it: {kept} of {}",
        outside.len()
    );

    // Everything: this cache is empty, the other site's is untouched.
    let o = as_owner(&stack, &["--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(entries(&cache).is_empty(), "{:?}", entries(&cache));
    assert_eq!(entries(&cache2), other_before);
    assert_eq!(cache_status(&stack, "GET", &neighbour, &[]), "MISS");
}

#[test]
fn vary_site_loses_every_variant_where_ngx_cache_purge_takes_one() {
    let mut stack = Stack::start();
    patch_nginx(&stack);
    stack.set("vary", true);
    let cache = stack.cache_dir();
    let (ascii, _) = pick_pages(&stack);
    let target = target_of(&stack, &ascii);
    let variants = |stack: &Stack| {
        for ae in [
            None,
            Some("gzip, deflate, br"),
            Some("gzip, deflate, br, zstd"),
        ] {
            let mut cmd = Command::new("curl");
            cmd.args(["-sS", "-o", "/dev/null", "-H"]);
            cmd.arg(match ae {
                Some(a) => format!("Accept-Encoding: {a}"),
                None => "Accept-Encoding:".to_owned(),
            });
            cmd.arg(&ascii);
            assert!(cmd.status().unwrap().success());
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while entries(&stack.cache_dir()).len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(
            entries(&stack.cache_dir()).len(),
            3,
            "three variants stored"
        );
    };
    variants(&stack);
    // The module removes the one variant that matches its own request.
    let (code, _) = curl(
        &stack,
        "GET",
        &format!("{}purge{target}", stack.base_url()),
        &["Accept-Encoding: gzip, deflate, br"],
    );
    assert_eq!(code, 200, "ngx_cache_purge purged");
    assert_eq!(
        entries(&cache).len(),
        2,
        "ngx_cache_purge leaves the other variants"
    );
    let o = as_owner(&stack, &["--json", &ascii]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        entries(&cache).is_empty(),
        "{:?}\n{}",
        entries(&cache),
        text(&o)
    );
    assert_eq!(json(&o)[0]["lookup"], "index");
    // Without an index: the same, by a scan.
    variants(&stack);
    let o = as_owner(&stack, &["--json", "--no-index", &ascii]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        entries(&cache).is_empty(),
        "{:?}\n{}",
        entries(&cache),
        text(&o)
    );
    let v = &json(&o)[0];
    assert_eq!(
        (v["files"].as_u64(), v["lookup"].as_str()),
        (Some(3), Some("scan")),
        "{v}"
    );
}

#[test]
fn exact_purges_remove_the_same_files_as_ngx_cache_purge() {
    let stack = Stack::start();
    patch_nginx(&stack);
    let cache = stack.cache_dir();
    let (ascii, non_ascii) = pick_pages(&stack);
    let urls = [ascii.clone(), non_ascii, format!("{ascii}?p=2&q=%e6%b0%b4")];
    let warm = |stack: &Stack| {
        for u in &urls {
            cache_status(stack, "GET", u, &[]);
        }
        for u in &urls {
            assert!(wait_exists(&file_of(
                &stack.cache_dir(),
                &key_of(stack, "GET", &target_of(stack, u))
            )));
        }
        entries(&stack.cache_dir())
            .into_iter()
            .collect::<BTreeSet<_>>()
    };
    let before = warm(&stack);
    assert_eq!(before.len(), urls.len());
    for u in &urls {
        let (code, _) = curl(
            &stack,
            "GET",
            &format!("{}purge{}", stack.base_url(), target_of(&stack, u)),
            &[],
        );
        assert_eq!(code, 200, "module purge of {u}");
    }
    let after_module: BTreeSet<String> = entries(&cache).into_iter().collect();
    let by_module: BTreeSet<String> = before.difference(&after_module).cloned().collect();
    let before2 = warm(&stack);
    assert_eq!(before2, before, "the same files come back");
    let mut args = vec!["--json"];
    args.extend(urls.iter().map(String::as_str));
    let o = as_owner(&stack, &args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let after_ours: BTreeSet<String> = entries(&cache).into_iter().collect();
    let by_us: BTreeSet<String> = before2.difference(&after_ours).cloned().collect();
    assert_eq!(by_us, by_module, "{}", text(&o));
    assert_eq!(by_us.len(), urls.len());
}

#[test]
fn through_setuid_safexec_the_site_user_purges_its_own_root_only() {
    let stack = Stack::start();
    let cache2 = patch_nginx(&stack);
    let (ascii, non_ascii) = pick_pages(&stack);
    for u in [&ascii, &non_ascii] {
        cache_status(&stack, "GET", u, &[]);
    }
    let base = stack.base_url().trim_end_matches('/').to_owned();
    for p in ["/", "/about/"] {
        curl(&stack, "GET", &format!("{base}{p}"), &["Host: other.test"]);
    }
    let f_ascii = file_of(
        &stack.cache_dir(),
        &key_of(&stack, "GET", &target_of(&stack, &ascii)),
    );
    assert!(wait_exists(&f_ascii));
    let other_before = entries(&cache2);
    assert!(!other_before.is_empty());
    let mut view = SafexecView::new("tenants");
    let site_root = view.mount_point("site", &stack.cache_dir());
    let other_root = view.mount_point("other", &cache2);
    let site_user = stack.site_user();
    view.set_conf(&format!(
        "cache_root = {} www-data allow={} url={base}\ncache_root = {} www-data allow=nobody url=http://other.test:{}\n",
        site_root.display(),
        site_user.name,
        other_root.display(),
        stack.var("PORT"),
    ));
    // The site user purges a page of its own site: cache-purge runs as www-data in that root.
    let o = view.purge(&site_user, &["--json", &ascii]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(json(&o)[0]["status"], "purged", "{}", text(&o));
    assert!(!f_ascii.exists());
    // Another tenant's root, bad input: refused, nothing deleted.
    let other_root_s = other_root.display().to_string();
    for args in [
        vec!["--cache-path", other_root_s.as_str(), "--all"],
        vec!["--cache-key", "$host", &ascii],
        vec!["ftp://example.com/"],
        vec![&non_ascii, "relative/url"],
    ] {
        let o = view.purge(&site_user, &args);
        assert_ne!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        assert_eq!(entries(&cache2), other_before, "{args:?}");
        let f = file_of(
            &stack.cache_dir(),
            &key_of(&stack, "GET", &target_of(&stack, &non_ascii)),
        );
        assert!(f.exists(), "{args:?} deleted {}", f.display());
    }
    // Purge all of its own root: the other site's cache stays.
    let o = view.purge(&site_user, &["--all"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(entries(&stack.cache_dir()).is_empty());
    assert_eq!(entries(&cache2), other_before);
}
