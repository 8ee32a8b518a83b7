//! Sitemap parsing (sitemaps.org protocol): `<urlset>` and `<sitemapindex>`
//! documents, gzip-compressed or not, plus plain-text sitemaps and the
//! `Sitemap:` lines of robots.txt.
//!
//! Parsing is a bounded pull parse: input size, number of entries and entry
//! length are all capped, so a hostile sitemap cannot exhaust memory.

use std::io::{BufRead, BufReader, Read};

use quick_xml::events::Event;
use quick_xml::Reader;

/// Bounds applied while parsing one sitemap document.
#[derive(Debug, Clone, Copy)]
pub struct SitemapLimits {
    /// Most decompressed bytes read (the protocol's own limit is 50 MiB).
    pub max_bytes: u64,
    /// Most `<loc>` entries kept (the protocol's own limit is 50,000).
    pub max_entries: usize,
    /// Longest `<loc>` value kept, in bytes.
    pub max_loc_len: usize,
}

impl Default for SitemapLimits {
    fn default() -> Self {
        SitemapLimits {
            max_bytes: 50 * 1024 * 1024,
            max_entries: 50_000,
            max_loc_len: 4096,
        }
    }
}

/// What kind of document was parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A `<urlset>`: the locations are pages.
    UrlSet,
    /// A `<sitemapindex>`: the locations are further sitemaps.
    Index,
    /// A plain-text sitemap: one page URL per line.
    Text,
}

/// A parsed sitemap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sitemap {
    /// Document kind.
    pub kind: Kind,
    /// The `<loc>` values (or text lines), trimmed, in document order.
    pub locs: Vec<String>,
    /// True if entries were dropped because a limit was reached.
    pub truncated: bool,
}

/// Parse a sitemap held in memory; gzip input (by its magic bytes) is
/// decompressed on the fly, whatever the `Content-Type` said.
pub fn parse_bytes(bytes: &[u8], limits: SitemapLimits) -> Result<Sitemap, String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::read::MultiGzDecoder::new(bytes);
        parse(BufReader::new(gz.take(limits.max_bytes)), limits)
    } else {
        parse(BufReader::new(bytes.take(limits.max_bytes)), limits)
    }
}

/// Parse a sitemap from a reader (already decompressed).
pub fn parse<R: BufRead>(mut input: R, limits: SitemapLimits) -> Result<Sitemap, String> {
    // Sniff: XML starts (after an optional BOM and whitespace) with '<'.
    let first = loop {
        let buf = input.fill_buf().map_err(|e| format!("read error: {e}"))?;
        if buf.is_empty() {
            break None;
        }
        let skip = buf
            .iter()
            .position(|b| !(b.is_ascii_whitespace() || *b == 0xEF || *b == 0xBB || *b == 0xBF));
        match skip {
            Some(p) => {
                let b = buf[p];
                break Some(b);
            }
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    };
    match first {
        None => Err("empty sitemap".to_string()),
        Some(b'<') => parse_xml(input, limits),
        Some(_) => parse_text(input, limits),
    }
}

fn parse_text<R: BufRead>(input: R, limits: SitemapLimits) -> Result<Sitemap, String> {
    let mut out = Sitemap {
        kind: Kind::Text,
        locs: Vec::new(),
        truncated: false,
    };
    for line in input.split(b'\n') {
        let line = line.map_err(|e| format!("read error: {e}"))?;
        let line = String::from_utf8_lossy(&line);
        let line = line.trim();
        if !(line.starts_with("http://") || line.starts_with("https://")) {
            continue;
        }
        push(&mut out, line, limits);
    }
    Ok(out)
}

fn push(out: &mut Sitemap, loc: &str, limits: SitemapLimits) {
    if loc.is_empty() {
        return;
    }
    if loc.len() > limits.max_loc_len || out.locs.len() >= limits.max_entries {
        out.truncated = true;
        return;
    }
    out.locs.push(loc.to_string());
}

fn parse_xml<R: BufRead>(input: R, limits: SitemapLimits) -> Result<Sitemap, String> {
    let mut reader = Reader::from_reader(input);
    let mut buf = Vec::new();
    let mut kind = None;
    let mut out = Sitemap {
        kind: Kind::UrlSet,
        locs: Vec::new(),
        truncated: false,
    };
    // Depth-tracking: a <loc> counts only directly inside <url>/<sitemap>.
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut loc: Option<String> = None;
    let mut loc_too_long = false;
    loop {
        let ev = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("XML error at byte {}: {e}", reader.buffer_position()))?;
        match ev {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_ascii_lowercase();
                if stack.is_empty() {
                    kind = match name.as_slice() {
                        b"urlset" => Some(Kind::UrlSet),
                        b"sitemapindex" => Some(Kind::Index),
                        other => {
                            return Err(format!(
                                "not a sitemap: root element <{}>",
                                String::from_utf8_lossy(other)
                            ))
                        }
                    };
                }
                if stack.len() > 64 {
                    return Err("XML nested too deeply".to_string());
                }
                if name == b"loc"
                    && stack.len() == 2
                    && matches!(stack[1].as_slice(), b"url" | b"sitemap")
                {
                    loc = Some(String::new());
                    loc_too_long = false;
                }
                stack.push(name);
            }
            Event::Empty(e) if stack.is_empty() => {
                let name = e.local_name().as_ref().to_ascii_lowercase();
                return match name.as_slice() {
                    b"urlset" => Ok(Sitemap {
                        kind: Kind::UrlSet,
                        ..out
                    }),
                    b"sitemapindex" => Ok(Sitemap {
                        kind: Kind::Index,
                        ..out
                    }),
                    _ => Err("not a sitemap".to_string()),
                };
            }
            Event::Text(t) => {
                if let Some(l) = loc.as_mut() {
                    let s = t.decode().map_err(|e| format!("bad text: {e}"))?;
                    append(l, &s, &mut loc_too_long, limits);
                }
            }
            Event::CData(t) => {
                if let Some(l) = loc.as_mut() {
                    let s = String::from_utf8_lossy(&t);
                    append(l, &s, &mut loc_too_long, limits);
                }
            }
            Event::GeneralRef(r) => {
                if let Some(l) = loc.as_mut() {
                    let ch = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c),
                        _ => match r.as_ref() {
                            b"amp" => Some('&'),
                            b"lt" => Some('<'),
                            b"gt" => Some('>'),
                            b"quot" => Some('"'),
                            b"apos" => Some('\''),
                            _ => None,
                        },
                    };
                    let Some(ch) = ch else {
                        return Err(format!(
                            "unknown entity &{};",
                            String::from_utf8_lossy(r.as_ref())
                        ));
                    };
                    append(l, ch.encode_utf8(&mut [0u8; 4]), &mut loc_too_long, limits);
                }
            }
            Event::End(_) => {
                let name = stack.pop();
                if name.as_deref() == Some(b"loc") {
                    if let Some(l) = loc.take() {
                        if loc_too_long {
                            out.truncated = true;
                        } else {
                            push(&mut out, l.trim(), limits);
                        }
                    }
                }
                if stack.is_empty() {
                    break;
                }
            }
            Event::Eof => {
                if kind.is_none() {
                    return Err("not a sitemap: no root element".to_string());
                }
                // Truncated input (size cap): keep what we have.
                out.truncated |= !stack.is_empty();
                break;
            }
            _ => {}
        }
        buf.clear();
    }
    out.kind = kind.unwrap_or(Kind::UrlSet);
    Ok(out)
}

fn append(l: &mut String, s: &str, too_long: &mut bool, limits: SitemapLimits) {
    if *too_long || l.len() + s.len() > limits.max_loc_len + 64 {
        *too_long = true;
        l.clear();
        return;
    }
    l.push_str(s);
}

/// The `Sitemap:` URLs listed in a robots.txt (field name case-insensitive).
pub fn robots_sitemaps(robots: &str, max: usize) -> Vec<String> {
    robots
        .lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("").trim();
            let (k, v) = line.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("sitemap")
                .then(|| v.trim().to_string())
        })
        .filter(|v| v.starts_with("http://") || v.starts_with("https://"))
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const URLSET: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc> https://example.com/a/ </loc><lastmod>2024-01-01</lastmod></url>
  <url><loc>https://example.com/s?x=1&amp;y=2</loc>
       <image:image><image:loc>https://example.com/img.png</image:loc></image:image></url>
  <url><loc><![CDATA[https://example.com/c/]]></loc></url>
</urlset>"#;

    #[test]
    fn urlset() {
        let s = parse_bytes(URLSET.as_bytes(), SitemapLimits::default()).unwrap();
        assert_eq!(s.kind, Kind::UrlSet);
        assert_eq!(
            s.locs,
            vec![
                "https://example.com/a/",
                "https://example.com/s?x=1&y=2",
                "https://example.com/c/"
            ]
        );
    }

    #[test]
    fn index_gzip() {
        let xml = r#"<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
            <sitemap><loc>https://example.com/s1.xml.gz</loc></sitemap>
            <sitemap><loc>https://example.com/s2.xml</loc></sitemap></sitemapindex>"#;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(xml.as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        let s = parse_bytes(&bytes, SitemapLimits::default()).unwrap();
        assert_eq!(s.kind, Kind::Index);
        assert_eq!(s.locs.len(), 2);
    }

    #[test]
    fn limits_and_errors() {
        let mut xml = String::from("<urlset>");
        for i in 0..100 {
            xml.push_str(&format!("<url><loc>https://e.com/{i}</loc></url>"));
        }
        xml.push_str("</urlset>");
        let lim = SitemapLimits {
            max_entries: 10,
            ..SitemapLimits::default()
        };
        let s = parse_bytes(xml.as_bytes(), lim).unwrap();
        assert_eq!(s.locs.len(), 10);
        assert!(s.truncated);
        let lim = SitemapLimits {
            max_bytes: 100,
            ..SitemapLimits::default()
        };
        let s = parse_bytes(xml.as_bytes(), lim).unwrap();
        assert!(s.truncated);
        assert!(parse_bytes(b"<html><body>no</body></html>", SitemapLimits::default()).is_err());
        assert!(parse_bytes(b"", SitemapLimits::default()).is_err());
        assert!(parse_bytes(b"<urlset><url><loc>&bogus;</loc></url></urlset>", lim).is_err());
    }

    #[test]
    fn text_sitemap_and_robots() {
        let s = parse_bytes(
            b"https://e.com/a\n\nnot a url\r\nhttps://e.com/b\r\n",
            SitemapLimits::default(),
        )
        .unwrap();
        assert_eq!(s.kind, Kind::Text);
        assert_eq!(s.locs, vec!["https://e.com/a", "https://e.com/b"]);
        let r = "User-agent: *\nDisallow: /wp-admin/\nSITEMAP: https://e.com/sitemap.xml # main\nsitemap:/relative.xml\n";
        assert_eq!(robots_sitemaps(r, 10), vec!["https://e.com/sitemap.xml"]);
    }
}
