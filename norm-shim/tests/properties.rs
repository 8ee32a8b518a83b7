//! Property tests (norm-spec.md §6.3): idempotence of every mode, Upper/Lower change nothing but
//! the case of triplet hex digits, outputs re-parse to themselves, and request-targets are always
//! safe to put on a request line.

use norm_shim::{lower_triplets, resolve, upper_triplets, Mode, Options, Scope, Target, Url};
use proptest::prelude::*;

const BASES: [&str; 4] = [
    "https://example.com/shop/",
    "http://example.com:8080/a/b?x=1",
    "https://xn--bcher-kva.example/%e6/",
    "http://[::1]/",
];

/// Pieces that exercise the interesting parser paths; mixed with arbitrary characters.
const PIECES: &[&str] = &[
    "/",
    "/",
    "//",
    ".",
    "..",
    "./",
    "../",
    "%2e",
    "%2E",
    "%2e%2E",
    "%",
    "%%",
    "%e6",
    "%B0",
    "%aF",
    "%zz",
    "%4",
    "%00",
    "%2f",
    "%7e",
    "a",
    "Z",
    "0",
    "F",
    "e",
    "水",
    "😀",
    "\u{e9}",
    "e\u{301}",
    "?",
    "#",
    "&",
    "=",
    "+",
    " ",
    "\t",
    "\n",
    "\r",
    "^",
    "|",
    "`",
    "{",
    "}",
    "\"",
    "<",
    ">",
    "'",
    "\\",
    "~",
    ":",
    "@",
    ";",
    "[",
    "]",
    "\u{0}",
    "\u{7f}",
    "https:",
    "http://",
    "HTTPS://",
    "Bücher.example",
    "EXAMPLE.com",
    ":443",
    ":80",
    "[::1]",
    "mailto:",
];

fn href() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        3 => prop::sample::select(PIECES).prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
    ];
    prop_oneof![
        4 => prop::collection::vec(piece, 0..24).prop_map(|v| v.concat()),
        1 => any::<String>(),
    ]
}

fn options() -> impl Strategy<Value = Options> {
    (
        prop::sample::select(Mode::ALL.to_vec()),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(mode, caret_fix, chromium_pipe, path_only)| Options {
            mode,
            caret_fix,
            chromium_pipe,
            scope: if path_only {
                Scope::PathOnly
            } else {
                Scope::PathAndQuery
            },
        })
}

fn base() -> impl Strategy<Value = Url> {
    prop::sample::select(BASES.to_vec()).prop_map(|b| Url::parse(b).unwrap())
}

/// Byte offsets of the two hex digits of every valid `%xx` triplet. Triplets cannot overlap
/// (`%` is not a hex digit), so no left-to-right scan is needed.
fn hex_positions(s: &str) -> Vec<usize> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    for i in 0..b.len().saturating_sub(2) {
        if b[i] == b'%' && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            out.extend([i + 1, i + 2]);
        }
    }
    out
}

/// `after` equals `before` except for the case of triplet hex digits (within `limit` bytes).
fn only_triplet_case_differs(before: &str, after: &str, limit: usize) -> Result<(), String> {
    if before.len() != after.len() {
        return Err(format!("length changed: {before:?} -> {after:?}"));
    }
    let allowed = hex_positions(before);
    for (i, (x, y)) in before.bytes().zip(after.bytes()).enumerate() {
        if x == y {
            continue;
        }
        if !allowed.contains(&i) || i >= limit || !x.eq_ignore_ascii_case(&y) {
            return Err(format!("byte {i} changed: {before:?} -> {after:?}"));
        }
    }
    Ok(())
}

fn resolve_ok(base: &Url, href: &str, opts: &Options) -> Option<Target> {
    resolve(base, href, opts).ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Normalizing the output again (as an absolute URL) gives the same output, in every mode.
    #[test]
    fn every_mode_is_idempotent(base in base(), href in href(), opts in options()) {
        if let Some(t) = resolve_ok(&base, &href, &opts) {
            let again = resolve(&base, &t.url_string(), &opts);
            prop_assert_eq!(again.as_ref(), Ok(&t), "href {:?}", href);
            // The origin-form target itself resolves to the same request on the same origin,
            // unless it starts with `//` (it would then read as a network-path reference).
            if !t.target.starts_with("//") {
                let origin = Url::parse(&format!("{}://{}/", t.scheme, t.authority())).unwrap();
                let again = resolve(&origin, &t.target, &opts);
                prop_assert_eq!(again.as_ref(), Ok(&t), "href {:?}", href);
            }
        }
    }

    /// `Url::parse(out)` re-serializes to itself.
    #[test]
    fn output_reparses_to_itself(base in base(), href in href(), opts in options()) {
        if let Some(t) = resolve_ok(&base, &href, &opts) {
            let s = t.url_string();
            let u = Url::parse(&s).map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
            prop_assert_eq!(u.as_str(), s.as_str());
        }
    }

    /// The target is safe on a request line whatever the input: visible ASCII only, starts
    /// with `/`, no fragment. Host and scheme are lower-case ASCII.
    #[test]
    fn target_is_request_line_safe(base in base(), href in href(), opts in options()) {
        if let Some(t) = resolve_ok(&base, &href, &opts) {
            prop_assert!(t.target.starts_with('/'), "{:?}", t.target);
            prop_assert!(t.target.bytes().all(|b| (0x21..0x7f).contains(&b)), "{:?}", t.target);
            prop_assert!(!t.target.contains('#'), "{:?}", t.target);
            prop_assert!(t.scheme == "http" || t.scheme == "https");
            prop_assert!(t.host.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()), "{:?}", t.host);
            prop_assert!(!t.host.is_empty());
        }
    }

    /// Upper/Lower keep the length and differ from Browser only in the case of triplet hex
    /// digits (only in the path with `Scope::PathOnly`); their triplets all have one case.
    #[test]
    fn upper_lower_only_recase_triplets(base in base(), href in href(), opts in options()) {
        let browser = resolve_ok(&base, &href, &Options { mode: Mode::Browser, ..opts });
        let upper = resolve_ok(&base, &href, &Options { mode: Mode::Upper, ..opts });
        let lower = resolve_ok(&base, &href, &Options { mode: Mode::Lower, ..opts });
        prop_assert_eq!(browser.is_some(), upper.is_some());
        prop_assert_eq!(browser.is_some(), lower.is_some());
        if let (Some(b), Some(u), Some(l)) = (browser, upper, lower) {
            let limit = match opts.scope {
                Scope::PathAndQuery => usize::MAX,
                Scope::PathOnly => b.target.find('?').unwrap_or(usize::MAX),
            };
            only_triplet_case_differs(&b.target, &u.target, limit).map_err(TestCaseError::fail)?;
            only_triplet_case_differs(&b.target, &l.target, limit).map_err(TestCaseError::fail)?;
            for i in hex_positions(&u.target).into_iter().filter(|&i| i < limit) {
                prop_assert!(!u.target.as_bytes()[i].is_ascii_lowercase(), "{:?}", u.target);
                prop_assert!(!l.target.as_bytes()[i].is_ascii_uppercase(), "{:?}", l.target);
            }
            prop_assert_eq!((&b.scheme, &b.host, b.port), (&u.scheme, &u.host, u.port));
            prop_assert_eq!((&b.scheme, &b.host, b.port), (&l.scheme, &l.host, l.port));
        }
    }

    /// Preserve is Browser; Off is Browser with both switches off.
    #[test]
    fn preserve_and_off_relations(base in base(), href in href(), opts in options()) {
        let browser = resolve(&base, &href, &Options { mode: Mode::Browser, ..opts });
        let preserve = resolve(&base, &href, &Options { mode: Mode::Preserve, ..opts });
        prop_assert_eq!(&browser, &preserve);
        let plain = Options { mode: Mode::Browser, caret_fix: false, chromium_pipe: false, ..opts };
        let off = resolve(&base, &href, &Options { mode: Mode::Off, ..opts });
        prop_assert_eq!(resolve(&base, &href, &plain), off);
    }

    /// A link made only of path-safe ASCII and existing triplets (no dot segments) is sent
    /// exactly as written in Browser mode: triplets keep the author's case.
    #[test]
    fn browser_keeps_existing_triplets(
        segments in prop::collection::vec(
            prop::collection::vec(
                prop_oneof![
                    "[a-zA-Z0-9_~-]{1,3}",
                    // First digit 3-f keeps %2e/%2E (dot segments) out.
                    "%[3-9a-fA-F][0-9a-fA-F]",
                ],
                1..4,
            ).prop_map(|v| v.concat()),
            0..5,
        ),
        query in prop::option::of("([a-z0-9=&+]|%[0-9a-fA-F][0-9a-fA-F]){0,12}"),
    ) {
        let mut href = format!("/{}", segments.join("/"));
        if let Some(q) = &query {
            href.push('?');
            href.push_str(q);
        }
        let base = Url::parse(BASES[0]).unwrap();
        let t = resolve(&base, &href, &Options::default()).unwrap();
        prop_assert_eq!(&t.target, &href);
        let u = resolve(&base, &href, &Options::with_mode(Mode::Upper)).unwrap();
        prop_assert_eq!(u.target, upper_triplets(&href));
        let l = resolve(&base, &href, &Options::with_mode(Mode::Lower)).unwrap();
        prop_assert_eq!(l.target, lower_triplets(&href));
    }

    /// The recasing helpers on arbitrary text: length kept, only triplet hex case changes,
    /// idempotent, and each undoes the other's case choice.
    #[test]
    fn recasing_helpers_on_any_text(s in prop_oneof![
        any::<String>(),
        "([%a-fA-F0-9zZ水/?]){0,40}",
    ]) {
        let u = upper_triplets(&s);
        let l = lower_triplets(&s);
        only_triplet_case_differs(&s, &u, usize::MAX).map_err(TestCaseError::fail)?;
        only_triplet_case_differs(&s, &l, usize::MAX).map_err(TestCaseError::fail)?;
        prop_assert_eq!(upper_triplets(&u), u.clone());
        prop_assert_eq!(lower_triplets(&l), l.clone());
        prop_assert_eq!(upper_triplets(&l), u);
        prop_assert_eq!(lower_triplets(&upper_triplets(&s)), l);
    }
}
