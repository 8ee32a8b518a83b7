//! Runs the request-target normalizer in every mode on arbitrary input and switches:
//! it must never panic, every output must be idempotent and request-line safe, and Upper/Lower
//! may differ from Browser only in the case of triplet hex digits.
//!
//! Input layout: one flag byte choosing the switches (bit 0 `caret_fix`, bit 1 `chromium_pipe`,
//! bit 2 `Scope::PathOnly`), then `base \n href`. Without a newline, or when the base does not
//! parse as an http(s) URL, the whole text is the href and a fixed base is used. Every mode runs on every input;
//! the switches come from the input so each execution stays cheap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use norm_shim::{lower_triplets, parse_base, resolve, upper_triplets, Mode, Options, Scope, Url};

const DEFAULT_BASE: &str = "https://example.com/shop/";

fn check_recased(before: &str, after: &str) {
    assert_eq!(before.len(), after.len(), "{before:?} -> {after:?}");
    let (b, a) = (before.as_bytes(), after.as_bytes());
    for i in 0..b.len() {
        if b[i] != a[i] {
            let at_triplet = (i >= 1
                && b[i - 1] == b'%'
                && i + 1 < b.len()
                && b[i].is_ascii_hexdigit()
                && b[i + 1].is_ascii_hexdigit())
                || (i >= 2
                    && b[i - 2] == b'%'
                    && b[i - 1].is_ascii_hexdigit()
                    && b[i].is_ascii_hexdigit());
            assert!(
                at_triplet && b[i].eq_ignore_ascii_case(&a[i]),
                "byte {i}: {before:?} -> {after:?}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let caret_fix = flags & 1 != 0;
    let chromium_pipe = flags & 2 != 0;
    let scope = if flags & 4 != 0 {
        Scope::PathOnly
    } else {
        Scope::PathAndQuery
    };
    let text = String::from_utf8_lossy(rest);
    let default_base = Url::parse(DEFAULT_BASE).expect("constant base");
    // `parse_base` refuses non-http(s) bases: `url` 2.5.8's own `file:` code can panic
    // (servo/rust-url#1114), and the crawler never resolves against anything else.
    let (base, href) = match text.split_once('\n') {
        Some((b, h)) => match parse_base(b) {
            Ok(u) => (u, h),
            Err(_) => (default_base, &*text),
        },
        None => (default_base, &*text),
    };

    check_recased(&text, &upper_triplets(&text));
    check_recased(&text, &lower_triplets(&text));

    let browser = resolve(
        &base,
        href,
        &Options {
            mode: Mode::Browser,
            caret_fix,
            chromium_pipe,
            scope,
        },
    );
    for mode in Mode::ALL {
        let opts = Options {
            mode,
            caret_fix,
            chromium_pipe,
            scope,
        };
        let result = resolve(&base, href, &opts);
        // Modes only differ after parsing, so they agree on whether the href is usable.
        assert_eq!(result.is_ok(), browser.is_ok(), "{href:?}");
        let Ok(t) = result else { continue };
        assert!(t.target.starts_with('/'), "{t:?}");
        assert!(t.target.bytes().all(|b| (0x21..0x7f).contains(&b)), "{t:?}");
        let url = t.url_string();
        let reparsed = Url::parse(&url).expect("output must parse");
        assert_eq!(reparsed.as_str(), url, "reparse");
        let again = resolve(&base, &url, &opts).expect("output must resolve");
        assert_eq!(again, t, "idempotence, href {href:?}");
        if let (Mode::Upper | Mode::Lower, Ok(b)) = (mode, &browser) {
            let limit = match scope {
                Scope::PathAndQuery => b.target.len(),
                Scope::PathOnly => b.target.find('?').unwrap_or(b.target.len()),
            };
            check_recased(&b.target, &t.target);
            assert_eq!(
                b.target[limit..],
                t.target[limit..],
                "query re-cased with PathOnly"
            );
        }
        if mode == Mode::Preserve {
            assert_eq!(Ok(&t), browser.as_ref(), "preserve must equal browser");
        }
    }
});
