//! Streaming link extraction from HTML with `lol_html`.
//!
//! The scanner is fed the (decoded) body chunk by chunk and keeps only the
//! raw `href`/`src` values it finds, bounded in count and length; the page
//! itself is never buffered. Links are resolved at the end so that a
//! `<base href>` anywhere in the document applies to all of them, as it does
//! in a browser.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashSet;
use std::io;
use std::rc::Rc;
use std::sync::LazyLock;

use encoding_rs::Encoding;
use lol_html::html_content::Element;
use lol_html::{
    AsciiCompatibleEncoding, ElementContentHandlers, HtmlRewriter, MemorySettings, OutputSink,
    Selector, Settings,
};

/// The selectors the scanner matches, parsed once per process: parsing them for every page cost
/// more than a cached page's whole request on a warm cache.
struct Selectors {
    anchor: Selector,
    link: Selector,
    iframe: Selector,
    base: Selector,
    meta: Selector,
}

static SELECTORS: LazyLock<Selectors> = LazyLock::new(|| {
    let parse = |s: &str| match s.parse::<Selector>() {
        Ok(sel) => sel,
        // The strings below are constants; a failure is a bug caught by every test.
        Err(e) => panic!("link selector {s:?} does not parse: {e}"),
    };
    Selectors {
        anchor: parse("a[href], area[href]"),
        link: parse("link[href]"),
        iframe: parse("iframe[src]"),
        base: parse("base[href]"),
        meta: parse("meta"),
    }
});

/// One element handler on a pre-parsed selector.
fn on<'h>(
    selector: &'static Selector,
    handler: impl FnMut(&mut Element<'_, '_>) -> lol_html::HandlerResult + 'h,
) -> (Cow<'static, Selector>, ElementContentHandlers<'h>) {
    (
        Cow::Borrowed(selector),
        ElementContentHandlers::default().element(handler),
    )
}

/// Bounds that keep a hostile page from using unbounded memory.
#[derive(Debug, Clone, Copy)]
pub struct LinkLimits {
    /// Most distinct links kept per page; later ones are ignored.
    pub max_links: usize,
    /// Longest attribute value kept, in bytes; longer values are ignored.
    pub max_href_len: usize,
    /// Memory the HTML tokenizer may use for a single tag.
    pub max_parser_memory: usize,
}

impl Default for LinkLimits {
    fn default() -> Self {
        LinkLimits {
            max_links: 20_000,
            max_href_len: 4096,
            max_parser_memory: 1 << 20,
        }
    }
}

/// The links found on one page, not yet resolved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PageLinks {
    /// The first `<base href>` value, entity-decoded.
    pub base: Option<String>,
    /// Link values in document order, entity-decoded, without duplicates.
    pub hrefs: Vec<String>,
    /// True if links were dropped because a limit was reached.
    pub truncated: bool,
    /// The document's character encoding: the one the scanner was given
    /// (from `Content-Type`), else the first `<meta>` charset, if known.
    /// Browsers encode link queries in it.
    pub encoding: Option<&'static Encoding>,
}

#[derive(Default)]
struct Found {
    links: PageLinks,
    /// Seeded per process (foldhash): SipHash was a visible share of a cached page's cost.
    seen: HashSet<String, foldhash::fast::RandomState>,
}

struct Discard;

impl OutputSink for Discard {
    fn handle_chunk(&mut self, _chunk: &[u8]) {}
}

/// A push-style link scanner: write HTML bytes into it, then call
/// [`LinkScanner::finish`].
pub struct LinkScanner {
    rewriter: Option<HtmlRewriter<'static, Discard>>,
    found: Rc<RefCell<Found>>,
    failed: bool,
}

fn keep(found: &Rc<RefCell<Found>>, limits: LinkLimits, raw: String) {
    if raw.len() > limits.max_href_len {
        found.borrow_mut().links.truncated = true;
        return;
    }
    let value = decode_entities(raw.trim());
    if value.is_empty() {
        return;
    }
    let mut f = found.borrow_mut();
    if f.seen.contains(&value) {
        return;
    }
    if f.links.hrefs.len() >= limits.max_links {
        f.links.truncated = true;
        return;
    }
    f.seen.insert(value.clone());
    f.links.hrefs.push(value);
}

fn rel_wanted(el: &Element<'_, '_>) -> bool {
    el.get_attribute("rel").is_some_and(|rel| {
        rel.split_ascii_whitespace().any(|t| {
            t.eq_ignore_ascii_case("next")
                || t.eq_ignore_ascii_case("prev")
                || t.eq_ignore_ascii_case("alternate")
        })
    })
}

impl LinkScanner {
    /// A scanner with the given limits, for a UTF-8 document (or one whose
    /// `<meta>` says otherwise).
    pub fn new(limits: LinkLimits) -> Self {
        Self::with_encoding(limits, None)
    }

    /// A scanner for a document whose `Content-Type` declared `encoding`.
    /// Without one, a `<meta charset>` switches the decoder, as in browsers.
    pub fn with_encoding(limits: LinkLimits, encoding: Option<&'static Encoding>) -> Self {
        let found = Rc::new(RefCell::new(Found::default()));
        found.borrow_mut().links.encoding = encoding;
        let header_encoding = encoding.is_some();
        let (f1, f2, f3, f4) = (found.clone(), found.clone(), found.clone(), found.clone());
        let f5 = found.clone();
        let ascii = encoding.and_then(AsciiCompatibleEncoding::new);
        let sel: &'static Selectors = &SELECTORS;
        let settings = Settings::new()
            .with_strict(false)
            .with_adjust_charset_on_meta_tag(!header_encoding)
            .with_encoding(ascii.unwrap_or_else(AsciiCompatibleEncoding::utf_8))
            .with_memory_settings(
                MemorySettings::new().with_max_allowed_memory_usage(limits.max_parser_memory),
            );
        let settings = settings
            .append_element_content_handler(on(&sel.anchor, move |el| {
                if let Some(v) = el.get_attribute("href") {
                    keep(&f1, limits, v);
                }
                Ok(())
            }))
            .append_element_content_handler(on(&sel.link, move |el| {
                if rel_wanted(el) {
                    if let Some(v) = el.get_attribute("href") {
                        keep(&f2, limits, v);
                    }
                }
                Ok(())
            }))
            .append_element_content_handler(on(&sel.iframe, move |el| {
                if let Some(v) = el.get_attribute("src") {
                    keep(&f3, limits, v);
                }
                Ok(())
            }))
            .append_element_content_handler(on(&sel.base, move |el| {
                let mut f = f4.borrow_mut();
                if f.links.base.is_none() {
                    if let Some(v) = el.get_attribute("href") {
                        if v.len() <= limits.max_href_len {
                            f.links.base = Some(decode_entities(v.trim()));
                        }
                    }
                }
                Ok(())
            }))
            .append_element_content_handler(on(&sel.meta, move |el| {
                if header_encoding {
                    return Ok(());
                }
                let mut f = f5.borrow_mut();
                if f.links.encoding.is_none() {
                    f.links.encoding =
                        meta_charset(el).and_then(|l| Encoding::for_label(l.as_bytes()));
                }
                Ok(())
            }));
        LinkScanner {
            rewriter: Some(HtmlRewriter::new(settings, Discard)),
            found,
            failed: false,
        }
    }

    /// Feed the next chunk of HTML. Returns false once the scanner has given
    /// up (a pathological tag exceeded the parser memory bound); the caller
    /// may keep writing, it is ignored.
    pub fn feed(&mut self, chunk: &[u8]) -> bool {
        if self.failed {
            return false;
        }
        if let Some(rw) = self.rewriter.as_mut() {
            if rw.write(chunk).is_err() {
                self.failed = true;
                self.rewriter = None;
            }
        }
        !self.failed
    }

    /// A handle to the links found so far, usable even if the scanner
    /// itself is lost (for example inside a failed decoder).
    pub fn results(&self) -> LinkResults {
        LinkResults(self.found.clone())
    }

    /// End of document: the links found so far.
    pub fn finish(mut self) -> PageLinks {
        if let Some(rw) = self.rewriter.take() {
            let _ = rw.end();
        }
        let mut f = self.found.borrow_mut();
        let mut links = std::mem::take(&mut f.links);
        links.truncated |= self.failed;
        links
    }
}

/// Shared access to a scanner's findings; see [`LinkScanner::results`].
pub struct LinkResults(Rc<RefCell<Found>>);

impl LinkResults {
    /// Take the links found so far, marking them truncated.
    pub fn take_truncated(&self) -> PageLinks {
        let mut links = std::mem::take(&mut self.0.borrow_mut().links);
        links.truncated = true;
        links
    }
}

impl io::Write for LinkScanner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The charset label of a `<meta charset>` or
/// `<meta http-equiv="Content-Type" content="…; charset=…">`.
fn meta_charset(el: &Element<'_, '_>) -> Option<String> {
    if let Some(c) = el.get_attribute("charset") {
        return Some(c.trim().to_string());
    }
    let equiv = el.get_attribute("http-equiv")?;
    if !equiv.trim().eq_ignore_ascii_case("content-type") {
        return None;
    }
    charset_param(&el.get_attribute("content")?).map(str::to_string)
}

/// The `charset` parameter of a `Content-Type` value.
pub fn charset_param(content_type: &str) -> Option<&str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches(|c| c == '"' || c == '\''))
    })
}

/// Extract links from a complete in-memory HTML document.
pub fn extract(html: &[u8], limits: LinkLimits) -> PageLinks {
    let mut s = LinkScanner::new(limits);
    s.feed(html);
    s.finish()
}

/// Decode the character references that occur in URLs in practice:
/// numeric ones and the named ones relevant to URL syntax. Unknown named
/// references are kept as written, which is also what a browser does with
/// an ambiguous ampersand.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        rest = &rest[pos..];
        let end = rest[1..]
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '#')
            .map(|e| e + 1)
            .unwrap_or(rest.len());
        let name = &rest[1..end];
        let has_semi = rest[end..].starts_with(';');
        let decoded = if let Some(num) = name.strip_prefix('#') {
            let code = if let Some(hex) = num.strip_prefix('x').or_else(|| num.strip_prefix('X')) {
                u32::from_str_radix(hex, 16).ok()
            } else {
                num.parse::<u32>().ok()
            };
            code.map(|c| match char::from_u32(c) {
                Some(ch) if c != 0 => ch,
                _ => '\u{FFFD}',
            })
        } else {
            match name {
                "amp" | "AMP" => Some('&'),
                "lt" | "LT" => Some('<'),
                "gt" | "GT" => Some('>'),
                "quot" | "QUOT" => Some('"'),
                "apos" => Some('\''),
                "nbsp" if has_semi => Some('\u{A0}'),
                "sol" if has_semi => Some('/'),
                "quest" if has_semi => Some('?'),
                "equals" if has_semi => Some('='),
                "num" if has_semi => Some('#'),
                "percnt" if has_semi => Some('%'),
                "colon" if has_semi => Some(':'),
                "period" if has_semi => Some('.'),
                "lowbar" if has_semi => Some('_'),
                "plus" if has_semi => Some('+'),
                "commat" if has_semi => Some('@'),
                _ => None,
            }
        };
        match decoded {
            Some(ch) => {
                out.push(ch);
                rest = &rest[end + usize::from(has_semi)..];
            }
            _ => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(html: &str) -> PageLinks {
        extract(html.as_bytes(), LinkLimits::default())
    }

    #[test]
    fn finds_the_link_kinds() {
        let p = ex(r#"<html><head>
            <link rel="stylesheet" href="/style.css">
            <link rel="next" href="/page/2/">
            <link rel="Alternate" hreflang="de" href="/de/">
            <link rel="canonical" href="/canon/">
            </head><body>
            <a href="/a/">A</a><a name="x">no href</a>
            <map><area href="/area/"></map>
            <iframe src="/frame/"></iframe>
            <img src="/img.png"><script src="/s.js"></script>
            <a href="/a/">dup</a>
            </body></html>"#);
        assert_eq!(
            p.hrefs,
            vec!["/page/2/", "/de/", "/a/", "/area/", "/frame/"]
        );
        assert_eq!(p.base, None);
        assert!(!p.truncated);
    }

    #[test]
    fn base_is_first_and_applies_anywhere() {
        let p = ex(r#"<a href="x">x</a><base href="/sub/"><base href="/other/">"#);
        assert_eq!(p.base.as_deref(), Some("/sub/"));
        assert_eq!(p.hrefs, vec!["x"]);
    }

    #[test]
    fn entities_and_whitespace() {
        let p = ex("<a href=' /s?a=1&amp;b=2&#38;c=3&#x26;d '>x</a><A HREF=\"/UP/\">y</a>");
        assert_eq!(p.hrefs, vec!["/s?a=1&b=2&c=3&d", "/UP/"]);
        assert_eq!(decode_entities("a&b&unknown;c&amp"), "a&b&unknown;c&");
        assert_eq!(decode_entities("&#0;&#xZZ;"), "\u{FFFD}&#xZZ;");
    }

    #[test]
    fn raw_unicode_and_mixed_case_kept_as_written() {
        let p = ex("<a href=\"/p/水/\">1</a><a href=\"/p/%e6%B0%b4/\">2</a>");
        assert_eq!(p.hrefs, vec!["/p/水/", "/p/%e6%B0%b4/"]);
    }

    #[test]
    fn limits_are_enforced() {
        let mut html = String::new();
        for i in 0..50 {
            html.push_str(&format!("<a href=\"/p{i}\">x</a>"));
        }
        html.push_str(&format!("<a href=\"/{}\">long</a>", "x".repeat(100)));
        let limits = LinkLimits {
            max_links: 10,
            max_href_len: 50,
            ..LinkLimits::default()
        };
        let p = extract(html.as_bytes(), limits);
        assert_eq!(p.hrefs.len(), 10);
        assert!(p.truncated);
    }

    #[test]
    fn chunked_feeding_matches_whole() {
        let html = "<html><a href=\"/one/\">1</a><a hr".to_string() + "ef=\"/two/\">2</a>";
        let whole = ex(&html);
        let mut s = LinkScanner::new(LinkLimits::default());
        for b in html.as_bytes().chunks(3) {
            s.feed(b);
        }
        assert_eq!(s.finish(), whole);
        assert_eq!(whole.hrefs, vec!["/one/", "/two/"]);
    }

    #[test]
    fn document_encoding_from_header_or_meta() {
        let (sjis, _, _) = encoding_rs::SHIFT_JIS.encode("<a href=\"/水?q=水\">x</a>");
        let mut s = LinkScanner::with_encoding(LinkLimits::default(), Some(encoding_rs::SHIFT_JIS));
        s.feed(&sjis);
        let p = s.finish();
        assert_eq!(p.hrefs, vec!["/水?q=水"]);
        assert_eq!(p.encoding, Some(encoding_rs::SHIFT_JIS));
        let mut doc = b"<html><head><meta charset=\"shift_jis\"></head><body>".to_vec();
        doc.extend_from_slice(&sjis);
        let p = extract(&doc, LinkLimits::default());
        assert_eq!(p.hrefs, vec!["/水?q=水"]);
        assert_eq!(p.encoding, Some(encoding_rs::SHIFT_JIS));
        let p =
            ex("<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">");
        assert_eq!(p.encoding, Some(encoding_rs::WINDOWS_1252));
        assert_eq!(charset_param("text/html; Charset=\"UTF-8\""), Some("UTF-8"));
        assert_eq!(charset_param("text/html"), None);
    }

    #[test]
    fn garbage_does_not_panic() {
        let _ = extract(b"<a href=\"\xff\xfe\"><<<>>><a href", LinkLimits::default());
        let _ = extract(&[0u8; 100], LinkLimits::default());
    }
}
