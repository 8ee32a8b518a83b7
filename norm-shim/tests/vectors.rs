//! The test vectors of shared/research/norm-spec.md §6.3, one test per vector, base
//! `https://example.com/shop/`, checked in every mode the table gives a value for.

use std::borrow::Cow;

use norm_shim::{
    resolve, resolve_form_get, resolve_with_encoding, Error, Mode, Options, Scope, Target, Url,
};

const BASE: &str = "https://example.com/shop/";

fn base() -> Url {
    Url::parse(BASE).unwrap()
}

fn run(href: &str, opts: Options) -> Target {
    resolve(&base(), href, &opts).unwrap_or_else(|e| panic!("{href:?}: {e}"))
}

fn target(href: &str, mode: Mode) -> String {
    run(href, Options::with_mode(mode)).target
}

/// Checks the Browser/Upper/Lower columns; `Preserve` must equal `Browser`, and so must `Off`
/// unless the path holds a raw `^` (the only default switch; vector 12 checks that case).
fn check(href: &str, browser: &str, upper: &str, lower: &str) {
    assert_eq!(target(href, Mode::Browser), browser, "browser {href:?}");
    assert_eq!(target(href, Mode::Upper), upper, "upper {href:?}");
    assert_eq!(target(href, Mode::Lower), lower, "lower {href:?}");
    assert_eq!(target(href, Mode::Preserve), browser, "preserve {href:?}");
    assert_eq!(target(href, Mode::Off), browser, "off {href:?}");
    let t = run(href, Options::default());
    assert_eq!(t.scheme, "https");
    assert_eq!(t.host, "example.com");
    assert_eq!(t.port, None);
}

/// All three columns equal.
fn check_same(href: &str, expected: &str) {
    check(href, expected, expected, expected);
}

#[test]
fn v01_fresh_encoding_is_upper_case() {
    check(
        "/product/水滴轮锻碳/",
        "/product/%E6%B0%B4%E6%BB%B4%E8%BD%AE%E9%94%BB%E7%A2%B3/",
        "/product/%E6%B0%B4%E6%BB%B4%E8%BD%AE%E9%94%BB%E7%A2%B3/",
        "/product/%e6%b0%b4%e6%bb%b4%e8%bd%ae%e9%94%bb%e7%a2%b3/",
    );
}

#[test]
fn v02_wordpress_lower_case_link_kept() {
    let wp = "/product/%e6%b0%b4%e6%bb%b4%e8%bd%ae%e9%94%bb%e7%a2%b3/";
    check(
        wp,
        wp,
        "/product/%E6%B0%B4%E6%BB%B4%E8%BD%AE%E9%94%BB%E7%A2%B3/",
        wp,
    );
}

#[test]
fn v03_mixed_case_stays_mixed() {
    check(
        "/product/%e6%B0%b4/",
        "/product/%e6%B0%b4/",
        "/product/%E6%B0%B4/",
        "/product/%e6%b0%b4/",
    );
}

#[test]
fn v04_reserved_recased_never_decoded() {
    check(
        "/a%2fb/%2F/c",
        "/a%2fb/%2F/c",
        "/a%2Fb/%2F/c",
        "/a%2fb/%2f/c",
    );
}

#[test]
fn v05_plus_kept_space_becomes_pct20() {
    check(
        "/search?q=a+b&r=a%2Bb&s=a b&t=水",
        "/search?q=a+b&r=a%2Bb&s=a%20b&t=%E6%B0%B4",
        "/search?q=a+b&r=a%2Bb&s=a%20b&t=%E6%B0%B4",
        "/search?q=a+b&r=a%2bb&s=a%20b&t=%e6%b0%b4",
    );
}

#[test]
fn v06_invalid_triplets_left_alone() {
    check_same("/a/%zz/%/b%?x=%&y=%4", "/a/%zz/%/b%?x=%&y=%4");
}

#[test]
fn v07_idn_host_to_punycode() {
    let href = "https://Bücher.example/straße/?q=ü";
    let t = run(href, Options::default());
    assert_eq!(t.host, "xn--bcher-kva.example");
    assert_eq!(t.port, None);
    assert_eq!(t.target, "/stra%C3%9Fe/?q=%C3%BC");
    assert_eq!(target(href, Mode::Upper), "/stra%C3%9Fe/?q=%C3%BC");
    assert_eq!(target(href, Mode::Lower), "/stra%c3%9fe/?q=%c3%bc");
    assert_eq!(target(href, Mode::Preserve), "/stra%C3%9Fe/?q=%C3%BC");
    assert_eq!(target(href, Mode::Off), "/stra%C3%9Fe/?q=%C3%BC");
    assert_eq!(t.authority(), "xn--bcher-kva.example");
}

#[test]
fn v08_host_lower_cased() {
    for mode in Mode::ALL {
        let t = run("https://xn--bcher-kva.EXAMPLE/x", Options::with_mode(mode));
        assert_eq!(t.host, "xn--bcher-kva.example", "{mode}");
        assert_eq!(t.target, "/x", "{mode}");
    }
}

#[test]
fn v09_fragment_never_sent() {
    check_same("/page/#frag%e6", "/page/");
}

#[test]
fn v10_dot_segments_removed_including_pct2e() {
    check_same("/a/./b/../c/%2e/%2E%2e/d", "/a/d");
}

#[test]
fn v11_unreserved_triplets_never_decoded() {
    check(
        "/a%41b/%7e/~/%2D",
        "/a%41b/%7e/~/%2D",
        "/a%41b/%7E/~/%2D",
        "/a%41b/%7e/~/%2d",
    );
}

#[test]
fn v12_path_special_characters_and_switches() {
    let href = "/a^b|c'd`e{f}/\"<>";
    let raw = "/a^b|c'd%60e%7Bf%7D/%22%3C%3E"; // url 2.5.8, no switches
    let firefox = "/a%5Eb|c'd%60e%7Bf%7D/%22%3C%3E"; // caret_fix (default)
    let chromium = "/a%5Eb%7Cc'd%60e%7Bf%7D/%22%3C%3E"; // caret_fix + chromium_pipe

    assert_eq!(target(href, Mode::Browser), firefox);
    assert_eq!(target(href, Mode::Preserve), firefox);
    assert_eq!(target(href, Mode::Upper), firefox);
    assert_eq!(target(href, Mode::Lower), "/a%5eb|c'd%60e%7bf%7d/%22%3c%3e");
    // Off is the url crate's own serialization: the switches do not apply.
    assert_eq!(target(href, Mode::Off), raw);

    let no_caret = Options {
        caret_fix: false,
        ..Options::default()
    };
    assert_eq!(run(href, no_caret).target, raw);

    let chrome = Options {
        chromium_pipe: true,
        ..Options::default()
    };
    assert_eq!(run(href, chrome).target, chromium);
    let chrome_lower = Options {
        mode: Mode::Lower,
        ..chrome
    };
    assert_eq!(
        run(href, chrome_lower).target,
        "/a%5eb%7cc'd%60e%7bf%7d/%22%3c%3e"
    );
    let pipe_only = Options {
        caret_fix: false,
        chromium_pipe: true,
        ..Options::default()
    };
    assert_eq!(
        run(href, pipe_only).target,
        "/a^b%7Cc'd%60e%7Bf%7D/%22%3C%3E"
    );
    let off_with_switches = Options {
        mode: Mode::Off,
        ..chrome
    };
    assert_eq!(run(href, off_with_switches).target, raw);
}

#[test]
fn v13_special_query_set() {
    check(
        "/p?q='\"<>`{}^|",
        "/p?q=%27%22%3C%3E`{}^|",
        "/p?q=%27%22%3C%3E`{}^|",
        "/p?q=%27%22%3c%3e`{}^|",
    );
    // The ^ and | switches are path-only.
    let chrome = Options {
        chromium_pipe: true,
        ..Options::default()
    };
    assert_eq!(run("/p?q=^|", chrome).target, "/p?q=^|");
}

#[test]
fn v14_empty_query_kept() {
    check_same("/p?", "/p?");
    check_same("/p", "/p");
    assert_ne!(
        run("/p?", Options::default()).dedupe_key(),
        run("/p", Options::default()).dedupe_key()
    );
}

#[test]
fn v15_scheme_host_case_and_default_port() {
    for mode in Mode::ALL {
        let t = run("HTTPS://EXAMPLE.COM:443/x", Options::with_mode(mode));
        assert_eq!(t.scheme, "https");
        assert_eq!(t.host, "example.com");
        assert_eq!(t.port, None);
        assert_eq!(t.target, "/x");
        assert_eq!(t.authority(), "example.com");
        assert_eq!(t.url_string(), "https://example.com/x");
    }
    // A non-default port is kept for the connection and Host header, not for the key.
    let t = run("HTTP://Example.COM:8080/x", Options::default());
    assert_eq!(t.scheme, "http");
    assert_eq!(t.port, Some(8080));
    assert_eq!(t.authority(), "example.com:8080");
    assert_eq!(t.dedupe_key(), "httpexample.com/x");
    let t = run("http://example.com:80/x", Options::default());
    assert_eq!(t.port, None);
}

#[test]
fn v16_backslash_is_slash() {
    check_same("/a\\b\\c", "/a/b/c");
}

#[test]
fn v17_space_in_path() {
    check_same("/x y", "/x%20y");
}

#[test]
fn v18_four_byte_utf8() {
    check(
        "/emoji/😀",
        "/emoji/%F0%9F%98%80",
        "/emoji/%F0%9F%98%80",
        "/emoji/%f0%9f%98%80",
    );
}

#[test]
fn v19_no_unicode_normalization() {
    check("/caf\u{e9}", "/caf%C3%A9", "/caf%C3%A9", "/caf%c3%a9");
    check("/cafe\u{301}", "/cafe%CC%81", "/cafe%CC%81", "/cafe%cc%81");
}

#[test]
fn v20_tab_lf_cr_and_surrounding_whitespace_stripped() {
    check_same("/a\tb\nc", "/abc");
    check_same("/a\r\nb", "/ab");
    check_same("  /trim  ", "/trim");
    check_same("\u{1}\t /trim \u{1f}", "/trim");
}

#[test]
fn v21_nul_triplet_kept() {
    check_same("/%00", "/%00");
}

#[test]
fn v22_relative_resolution() {
    check_same("../../up", "/up");
    check_same("?only=query", "/shop/?only=query");
    check_same("item", "/shop/item");
    check_same("", "/shop/");
    check_same("//example.com/z", "/z");
}

/// Vector 23 is derived from the encoding tables; this crate has no encoder, so the test
/// plugs in the one character it needs, exactly as a caller plugs in `encoding_rs`.
fn one_char_encoder(ch: char, bytes: &'static [u8]) -> impl Fn(&str) -> Cow<'_, [u8]> {
    move |s: &str| {
        let mut out = Vec::with_capacity(s.len());
        for c in s.chars() {
            if c == ch {
                out.extend_from_slice(bytes);
            } else {
                assert!(c.is_ascii(), "test encoder only knows {ch:?} and ASCII");
                out.push(c as u8);
            }
        }
        Cow::Owned(out)
    }
}

#[test]
fn v23_query_in_document_encoding() {
    let sjis = one_char_encoder('水', &[0x90, 0x85]);
    let gbk = one_char_encoder('水', &[0xCB, 0xAE]);
    let go = |mode: Mode, enc: &dyn Fn(&str) -> Cow<'_, [u8]>| {
        resolve_with_encoding(&base(), "/水?q=水", &Options::with_mode(mode), enc)
            .unwrap()
            .target
    };
    assert_eq!(go(Mode::Browser, &sjis), "/%E6%B0%B4?q=%90%85");
    assert_eq!(go(Mode::Upper, &sjis), "/%E6%B0%B4?q=%90%85");
    assert_eq!(go(Mode::Lower, &sjis), "/%e6%b0%b4?q=%90%85");
    assert_eq!(go(Mode::Preserve, &sjis), "/%E6%B0%B4?q=%90%85");
    assert_eq!(go(Mode::Off, &sjis), "/%E6%B0%B4?q=%90%85");
    assert_eq!(go(Mode::Browser, &gbk), "/%E6%B0%B4?q=%CB%AE");
    assert_eq!(go(Mode::Lower, &gbk), "/%e6%b0%b4?q=%cb%ae");
    // Existing triplets in the query pass through the encoder untouched.
    let t = resolve_with_encoding(&base(), "/p?a=%e6&b=水", &Options::default(), &sjis).unwrap();
    assert_eq!(t.target, "/p?a=%e6&b=%90%85");
}

#[test]
fn v24_form_get_urlencoded() {
    let go = |mode: Mode| {
        resolve_form_get(
            &base(),
            "/search?old=1#f",
            &[("q", "水 x+y~*'!")],
            &Options::with_mode(mode),
        )
        .unwrap()
        .target
    };
    assert_eq!(go(Mode::Browser), "/search?q=%E6%B0%B4+x%2By%7E*%27%21");
    assert_eq!(go(Mode::Upper), "/search?q=%E6%B0%B4+x%2By%7E*%27%21");
    assert_eq!(go(Mode::Lower), "/search?q=%e6%b0%b4+x%2by%7e*%27%21");
    assert_eq!(go(Mode::Preserve), "/search?q=%E6%B0%B4+x%2By%7E*%27%21");
    assert_eq!(go(Mode::Off), "/search?q=%E6%B0%B4+x%2By%7E*%27%21");
    let empty = resolve_form_get(&base(), "", &[], &Options::default()).unwrap();
    assert_eq!(empty.target, "/shop/?");
}

// ---- API behaviour beyond the table ----

#[test]
fn mode_from_str_is_case_insensitive_and_round_trips() {
    for mode in Mode::ALL {
        assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
        assert_eq!(mode.to_string().to_uppercase().parse::<Mode>(), Ok(mode));
    }
    assert_eq!("Browser".parse::<Mode>(), Ok(Mode::Browser));
    assert_eq!(Mode::default(), Mode::Browser);
}

#[test]
fn bad_mode_is_a_one_line_error() {
    for bad in ["", "canonical", " upper", "upper ", "uppercase"] {
        let err = bad.parse::<Mode>().unwrap_err().to_string();
        assert!(!err.contains('\n'), "{err}");
        assert_eq!(
            err,
            format!(
                "invalid normalizer mode {bad:?}: expected browser, upper, lower, preserve or off"
            )
        );
    }
}

#[test]
fn default_options() {
    let o = Options::default();
    assert_eq!(o.mode, Mode::Browser);
    assert!(o.caret_fix);
    assert!(!o.chromium_pipe);
    assert_eq!(o.scope, Scope::PathAndQuery);
}

#[test]
fn scope_path_only_leaves_query_case() {
    let opts = |mode| Options {
        mode,
        scope: Scope::PathOnly,
        ..Options::default()
    };
    assert_eq!(
        run("/p/%e6x?q=%e6&r=%Aa", opts(Mode::Upper)).target,
        "/p/%E6x?q=%e6&r=%Aa"
    );
    assert_eq!(
        run("/p/%E6x?q=%E6&r=%Aa", opts(Mode::Lower)).target,
        "/p/%e6x?q=%E6&r=%Aa"
    );
    assert_eq!(run("/p/%E6^", opts(Mode::Lower)).target, "/p/%e6%5e");
    assert_eq!(
        run("/p/%e6?q=%e6", opts(Mode::Browser)).target,
        "/p/%e6?q=%e6"
    );
}

#[test]
fn keys() {
    let t = run("/product/水滴/", Options::default());
    assert_eq!(
        t.cache_key("GET"),
        "httpsGETexample.com/product/%E6%B0%B4%E6%BB%B4/"
    );
    assert_eq!(
        t.dedupe_key(),
        "httpsexample.com/product/%E6%B0%B4%E6%BB%B4/"
    );
    let l = run("/product/水滴/", Options::with_mode(Mode::Lower));
    assert_ne!(t.dedupe_key(), l.dedupe_key());
}

#[test]
fn userinfo_is_dropped() {
    let t = run("https://u:p@example.com/x", Options::default());
    assert_eq!(t.url_string(), "https://example.com/x");
}

#[test]
fn ipv6_host_keeps_brackets() {
    let t = run("http://[::1]:8080/x", Options::default());
    assert_eq!(t.host, "[::1]");
    assert_eq!(t.authority(), "[::1]:8080");
}

#[test]
fn non_http_schemes_are_rejected() {
    for href in [
        "mailto:a@example.com",
        "javascript:void(0)",
        "ftp://example.com/",
        "data:,x",
    ] {
        let err = resolve(&base(), href, &Options::default()).unwrap_err();
        assert!(matches!(err, Error::UnsupportedScheme(_)), "{href}: {err}");
        assert!(
            err.to_string().starts_with("unsupported URL scheme"),
            "{err}"
        );
    }
}

#[test]
fn non_http_schemes_are_refused_before_parsing() {
    // url 2.5.8 trips a debug_assert in its file: path code for this pair
    // (servo/rust-url#1114; found by fuzz/fuzz_targets/normalize.rs).
    let file_base = Url::parse("file:///e:///").unwrap();
    let err = resolve(&file_base, "..", &Options::default()).unwrap_err();
    assert_eq!(err, Error::UnsupportedScheme("file".into()));
    let w = Url::parse("file:///w:/a:").unwrap();
    assert!(resolve(&w, "file:..", &Options::default()).is_err());
    for href in [
        "file:..",
        " \t FiLe:..",
        "F\nILE://e:/..",
        "view-source:http://x/",
    ] {
        let err = resolve(&base(), href, &Options::default()).unwrap_err();
        assert!(
            matches!(err, Error::UnsupportedScheme(_)),
            "{href:?}: {err}"
        );
    }
    // Relative references that merely contain a colon later on are still links.
    assert_eq!(run("/a:b", Options::default()).target, "/a:b");
    assert_eq!(run("a/b:c", Options::default()).target, "/shop/a/b:c");
    assert_eq!(run("1a:b", Options::default()).target, "/shop/1a:b");
    assert_eq!(
        run(" \tHtTpS://example.com/x", Options::default()).target,
        "/x"
    );
}

#[test]
fn parse_base_accepts_only_absolute_http() {
    use norm_shim::parse_base;
    assert_eq!(
        parse_base("HTTPS://Example.com").unwrap().as_str(),
        "https://example.com/"
    );
    assert_eq!(
        parse_base(" http://[::1]:8080/a?b ").unwrap().as_str(),
        "http://[::1]:8080/a?b"
    );
    assert_eq!(
        parse_base("file:///etc/passwd"),
        Err(Error::UnsupportedScheme("file".into()))
    );
    let err = parse_base("/relative").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid URL \"/relative\": relative URL without a base"
    );
    assert!(matches!(parse_base("https://"), Err(Error::Parse { .. })));
}

#[test]
fn unparsable_href_is_an_error_not_a_panic() {
    for href in [
        "http://",
        "https://exa mple.com/",
        "http://[::1/",
        "https://a:99999/",
    ] {
        let err = resolve(&base(), href, &Options::default()).unwrap_err();
        assert!(matches!(err, Error::Parse { .. }), "{href}: {err}");
        let msg = err.to_string();
        assert!(msg.starts_with("invalid URL "), "{msg}");
        assert!(!msg.contains('\n'), "{msg}");
    }
}

#[test]
fn request_target_on_parsed_url() {
    let u = Url::parse("https://example.com/a^b/%e6?x=%e6#frag").unwrap();
    assert_eq!(
        norm_shim::request_target(&u, &Options::default()),
        "/a%5Eb/%e6?x=%e6"
    );
    assert_eq!(
        norm_shim::request_target(&u, &Options::with_mode(Mode::Upper)),
        "/a%5Eb/%E6?x=%E6"
    );
    assert_eq!(
        norm_shim::request_target(&u, &Options::with_mode(Mode::Off)),
        "/a^b/%e6?x=%e6"
    );
}

#[test]
fn recasing_helpers() {
    use norm_shim::{lower_triplets, upper_triplets};
    assert_eq!(upper_triplets("%aF%Af%af"), "%AF%AF%AF");
    assert_eq!(lower_triplets("%aF%Af%AF"), "%af%af%af");
    assert_eq!(upper_triplets("%%4a"), "%%4A");
    assert_eq!(upper_triplets("%zz%2/%4a%4"), "%zz%2/%4A%4");
    assert_eq!(upper_triplets("%e"), "%e");
    assert_eq!(upper_triplets("水%e6"), "水%E6");
    assert_eq!(upper_triplets("abcdef"), "abcdef");
    assert_eq!(lower_triplets(""), "");
}
