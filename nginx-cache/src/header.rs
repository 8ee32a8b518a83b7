//! The on-disk header of an nginx cache file and its `KEY:` line.
//!
//! nginx writes `ngx_http_file_cache_header_t` with `memcpy`, in host byte order and host struct
//! layout, then `"\nKEY: "`, the key and `"\n"`, then the upstream response as received. This is
//! the one place the layout is written down. It is the layout of `NGX_HTTP_CACHE_VERSION` 5
//! (nginx ≥ 1.11.10) on LP64 Linux (x86_64, aarch64: `ngx_uint_t` and `time_t` are 8 bytes),
//! little-endian, measured on real files (purge-spec.md §1.1):
//!
//! | field | C type | offset | size |
//! |---|---|---|---|
//! | `version` | `ngx_uint_t` | 0 | 8 |
//! | `valid_sec` | `time_t` | 8 | 8 |
//! | `updating_sec` | `time_t` | 16 | 8 |
//! | `error_sec` | `time_t` | 24 | 8 |
//! | `last_modified` | `time_t` | 32 | 8 |
//! | `date` | `time_t` | 40 | 8 |
//! | `crc32` | `uint32_t` | 48 | 4 |
//! | `valid_msec` | `u_short` | 52 | 2 |
//! | `header_start` | `u_short` | 54 | 2 |
//! | `body_start` | `u_short` | 56 | 2 |
//! | `etag_len`, `etag[128]` | `u_char` | 58, 59 | 1 + 128 |
//! | `vary_len`, `vary[128]` | `u_char` | 187, 188 | 1 + 128 |
//! | `variant[16]` | `u_char` | 316 | 16 |
//! | padding | | 332 | 4 |
//!
//! `sizeof` is 336; the `KEY:` line starts there, the key at 342, and `header_start` is
//! `336 + 6 + key length + 1`.
//!
//! **Why the key is read at the fixed offset.** `etag` and `vary` hold upstream-controlled bytes
//! *before* the real `KEY:` line: an ETag of exactly 10 bytes puts `0x0A` (a newline) in
//! `etag_len`, so `ETag: KEY: https` plants a line `KEY: https…` inside the header, and the body
//! may hold any number of `KEY:` lines. A scanner that takes "the first line starting with
//! `KEY: `" (grep, rg, a PHP regex) is fooled; [`Entry::parse`] checks the version and
//! `header_start` and reads only at offset 342, so it never is.

use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;

/// `NGX_HTTP_CACHE_VERSION`: the header version this layout describes.
pub const HEADER_VERSION: u64 = 5;
/// `sizeof(ngx_http_file_cache_header_t)` on LP64.
pub const HEADER_SIZE: usize = 336;
/// What nginx writes right after the header.
pub const KEY_MARK: &[u8] = b"\nKEY: ";
/// Where the key starts.
pub const KEY_OFFSET: usize = HEADER_SIZE + KEY_MARK.len();
/// `header_start` is a `u_short`: no entry's header and key are longer.
pub const MAX_HEADER_START: usize = u16::MAX as usize;

const OFF_VALID_SEC: usize = 8;
const OFF_UPDATING_SEC: usize = 16;
const OFF_ERROR_SEC: usize = 24;
const OFF_LAST_MODIFIED: usize = 32;
const OFF_DATE: usize = 40;
const OFF_CRC32: usize = 48;
const OFF_VALID_MSEC: usize = 52;
const OFF_HEADER_START: usize = 54;
const OFF_BODY_START: usize = 56;
const OFF_ETAG_LEN: usize = 58;
const OFF_ETAG: usize = 59;
const OFF_VARY_LEN: usize = 187;
const OFF_VARY: usize = 188;
const OFF_VARIANT: usize = 316;
const FIELD_MAX: usize = 128;

/// The decoded binary header of a cache file.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Header {
    /// Absolute expiry, epoch seconds.
    pub valid_sec: i64,
    /// `stale-while-revalidate` window.
    pub updating_sec: i64,
    /// `stale-if-error` window.
    pub error_sec: i64,
    /// The upstream's `Last-Modified`.
    pub last_modified: i64,
    /// The upstream's `Date`.
    pub date: i64,
    /// CRC32 of the key.
    pub crc32: u32,
    /// Milliseconds part of the validity.
    pub valid_msec: u16,
    /// Offset of the stored upstream response (just after the `KEY:` line).
    pub header_start: u16,
    /// Offset of the body.
    pub body_start: u16,
    /// The upstream's ETag (at most 128 bytes).
    pub etag: Vec<u8>,
    /// The upstream's `Vary` value, as received (at most 128 bytes; empty without `Vary`).
    pub vary: Vec<u8>,
    /// The variant hash of the request that stored this file.
    pub variant: [u8; 16],
}

/// Why bytes are not a usable version-5 cache entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// Shorter than the header, or than `header_start` says.
    TooShort,
    /// Another header version (another nginx version or a 32-bit build).
    Version(u64),
    /// `header_start` does not fit a `KEY:` line, or an ETag/Vary length is over 128.
    BadLayout,
    /// No `"\nKEY: "` at offset 336.
    NoKeyLine,
    /// The byte before `header_start` is not the `KEY:` line's newline.
    KeyNotTerminated,
    /// The file cannot be read.
    Io(String),
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::TooShort => f.write_str("too short for an nginx cache entry"),
            HeaderError::Version(v) => write!(f, "header version {v}, not {HEADER_VERSION}"),
            HeaderError::BadLayout => f.write_str("header fields out of range"),
            HeaderError::NoKeyLine => f.write_str("no KEY line after the header"),
            HeaderError::KeyNotTerminated => f.write_str("KEY line does not end at header_start"),
            HeaderError::Io(e) => write!(f, "cannot read: {e}"),
        }
    }
}

impl std::error::Error for HeaderError {}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn i64_at(b: &[u8], off: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    i64::from_le_bytes(a)
}

impl Header {
    /// Decodes the first [`HEADER_SIZE`] bytes of `bytes`, checking the version and the ranges
    /// of `header_start`, `etag_len` and `vary_len`.
    pub fn parse(bytes: &[u8]) -> Result<Header, HeaderError> {
        if bytes.len() < HEADER_SIZE {
            return Err(HeaderError::TooShort);
        }
        let version = u64::try_from(i64_at(bytes, 0)).unwrap_or(u64::MAX);
        if version != HEADER_VERSION {
            return Err(HeaderError::Version(version));
        }
        let etag_len = usize::from(bytes[OFF_ETAG_LEN]);
        let vary_len = usize::from(bytes[OFF_VARY_LEN]);
        let header_start = u16_at(bytes, OFF_HEADER_START);
        if etag_len > FIELD_MAX || vary_len > FIELD_MAX || usize::from(header_start) <= KEY_OFFSET {
            return Err(HeaderError::BadLayout);
        }
        let mut variant = [0u8; 16];
        variant.copy_from_slice(&bytes[OFF_VARIANT..OFF_VARIANT + 16]);
        Ok(Header {
            valid_sec: i64_at(bytes, OFF_VALID_SEC),
            updating_sec: i64_at(bytes, OFF_UPDATING_SEC),
            error_sec: i64_at(bytes, OFF_ERROR_SEC),
            last_modified: i64_at(bytes, OFF_LAST_MODIFIED),
            date: i64_at(bytes, OFF_DATE),
            crc32: u32_at(bytes, OFF_CRC32),
            valid_msec: u16_at(bytes, OFF_VALID_MSEC),
            header_start,
            body_start: u16_at(bytes, OFF_BODY_START),
            etag: bytes[OFF_ETAG..OFF_ETAG + etag_len].to_vec(),
            vary: bytes[OFF_VARY..OFF_VARY + vary_len].to_vec(),
            variant,
        })
    }

    /// The header bytes followed by the `KEY:` line and `response`, as nginx writes a file.
    /// `header_start` and `crc32` are computed here; `body_start` is set to the first byte after
    /// a blank line in `response` (or to `header_start` without one). For fixtures and the
    /// benchmark generator; an `etag` or `vary` over 128 bytes or a key too long for a
    /// `u_short` offset is cut.
    pub fn encode(&self, key: &[u8], response: &[u8]) -> Vec<u8> {
        let key = &key[..key.len().min(MAX_HEADER_START - KEY_OFFSET - 1)];
        let header_start = KEY_OFFSET + key.len() + 1;
        let body_start = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(header_start, |p| header_start + p + 4)
            .min(MAX_HEADER_START);
        let mut b = vec![0u8; HEADER_SIZE];
        b[..8].copy_from_slice(&HEADER_VERSION.to_le_bytes());
        b[OFF_VALID_SEC..OFF_VALID_SEC + 8].copy_from_slice(&self.valid_sec.to_le_bytes());
        b[OFF_UPDATING_SEC..OFF_UPDATING_SEC + 8].copy_from_slice(&self.updating_sec.to_le_bytes());
        b[OFF_ERROR_SEC..OFF_ERROR_SEC + 8].copy_from_slice(&self.error_sec.to_le_bytes());
        b[OFF_LAST_MODIFIED..OFF_LAST_MODIFIED + 8]
            .copy_from_slice(&self.last_modified.to_le_bytes());
        b[OFF_DATE..OFF_DATE + 8].copy_from_slice(&self.date.to_le_bytes());
        b[OFF_CRC32..OFF_CRC32 + 4].copy_from_slice(&crc32fast::hash(key).to_le_bytes());
        b[OFF_VALID_MSEC..OFF_VALID_MSEC + 2].copy_from_slice(&self.valid_msec.to_le_bytes());
        let hs = u16::try_from(header_start).unwrap_or(u16::MAX);
        let bs = u16::try_from(body_start).unwrap_or(u16::MAX);
        b[OFF_HEADER_START..OFF_HEADER_START + 2].copy_from_slice(&hs.to_le_bytes());
        b[OFF_BODY_START..OFF_BODY_START + 2].copy_from_slice(&bs.to_le_bytes());
        let etag = &self.etag[..self.etag.len().min(FIELD_MAX)];
        b[OFF_ETAG_LEN] = u8::try_from(etag.len()).unwrap_or(0);
        b[OFF_ETAG..OFF_ETAG + etag.len()].copy_from_slice(etag);
        let vary = &self.vary[..self.vary.len().min(FIELD_MAX)];
        b[OFF_VARY_LEN] = u8::try_from(vary.len()).unwrap_or(0);
        b[OFF_VARY..OFF_VARY + vary.len()].copy_from_slice(vary);
        b[OFF_VARIANT..OFF_VARIANT + 16].copy_from_slice(&self.variant);
        b.extend_from_slice(KEY_MARK);
        b.extend_from_slice(key);
        b.push(b'\n');
        b.extend_from_slice(response);
        b
    }
}

/// A cache entry's header and its key, read at the fixed offset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The binary header.
    pub header: Header,
    /// The key bytes (`$request_uri` may hold raw non-UTF-8 bytes).
    pub key: Vec<u8>,
}

impl Entry {
    /// Parses the start of a cache file (at least `header_start` bytes of it).
    ///
    /// Checks the version and ranges ([`Header::parse`]), requires `"\nKEY: "` exactly at
    /// offset 336 and the line's `\n` exactly at `header_start - 1`, and takes the bytes in
    /// between as the key. A forged `KEY:` line in the ETag, the Vary value or the body is
    /// never looked at.
    pub fn parse(bytes: &[u8]) -> Result<Entry, HeaderError> {
        let header = Header::parse(bytes)?;
        let end = usize::from(header.header_start);
        if bytes.len() < end {
            return Err(HeaderError::TooShort);
        }
        if &bytes[HEADER_SIZE..KEY_OFFSET] != KEY_MARK {
            return Err(HeaderError::NoKeyLine);
        }
        if bytes[end - 1] != b'\n' {
            return Err(HeaderError::KeyNotTerminated);
        }
        let key = bytes[KEY_OFFSET..end - 1].to_vec();
        // nginx refuses control characters in request lines, so no key holds a newline.
        if key.contains(&b'\n') {
            return Err(HeaderError::KeyNotTerminated);
        }
        Ok(Entry { header, key })
    }

    /// The key as text, lossily (for display).
    pub fn key_lossy(&self) -> String {
        String::from_utf8_lossy(&self.key).into_owned()
    }
}

/// Reads the header and key of an open cache file with positioned reads (the file offset is not
/// used, so a shared descriptor is fine): the first 4 KiB, then up to `header_start` if the key
/// is longer. The caller opens the file (with `O_NOFOLLOW | O_NONBLOCK`) and checks its type.
pub fn read_entry(file: &File) -> Result<Entry, HeaderError> {
    let mut buf = vec![0u8; 4096];
    let n = read_full_at(file, &mut buf, 0)?;
    buf.truncate(n);
    let header = Header::parse(&buf)?;
    let want = usize::from(header.header_start);
    if want > buf.len() && n == 4096 {
        let mut rest = vec![0u8; want - buf.len()];
        let m = read_full_at(file, &mut rest, 4096)?;
        rest.truncate(m);
        buf.extend_from_slice(&rest);
    }
    Entry::parse(&buf)
}

fn read_full_at(file: &File, buf: &mut [u8], offset: u64) -> Result<usize, HeaderError> {
    let mut done = 0;
    while done < buf.len() {
        let at = offset + u64::try_from(done).unwrap_or(u64::MAX);
        match file.read_at(&mut buf[done..], at) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(HeaderError::Io(e.to_string())),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, etag: &[u8], response: &[u8]) -> Vec<u8> {
        Header {
            valid_sec: 1_900_000_000,
            etag: etag.to_vec(),
            ..Header::default()
        }
        .encode(key.as_bytes(), response)
    }

    #[test]
    fn live_layout_example() {
        // purge-spec.md §1.2: this 24-byte key gives header_start 367 on a live nginx.
        let b = entry("httpGETexample.com/vary/", b"", b"Status: 200 OK\r\n\r\nhi");
        let e = Entry::parse(&b).unwrap();
        assert_eq!(e.header.header_start, 367);
        assert_eq!(usize::from(e.header.body_start), 367 + 18);
        assert_eq!(e.key, b"httpGETexample.com/vary/");
        assert_eq!(e.header.crc32, crc32fast::hash(b"httpGETexample.com/vary/"));
        assert_eq!(e.header.valid_sec, 1_900_000_000);
    }

    #[test]
    fn etag_forgery_is_not_the_key() {
        // `ETag: KEY: https` is 10 bytes: etag_len is '\n' and the header holds "\nKEY: https".
        let b = entry(
            "httpsGETexample.com/real/",
            b"KEY: https",
            b"Status: 200 OK\r\n\r\nKEY: httpsGETexample.com/victim/\n",
        );
        assert_eq!(b[OFF_ETAG_LEN], b'\n');
        let naive = b.windows(6).position(|w| w == b"\nKEY: ").unwrap();
        assert!(naive < HEADER_SIZE, "the forgery is really there");
        let e = Entry::parse(&b).unwrap();
        assert_eq!(e.key, b"httpsGETexample.com/real/");
        assert_eq!(e.header.etag, b"KEY: https");
    }

    #[test]
    fn malformed_entries_are_refused() {
        let good = entry("k", b"", b"");
        assert!(Entry::parse(&good).is_ok());
        assert_eq!(Entry::parse(&good[..300]), Err(HeaderError::TooShort));
        assert_eq!(
            Entry::parse(&good[..good.len() - 1]),
            Err(HeaderError::TooShort)
        );
        let mut v4 = good.clone();
        v4[0] = 4;
        assert_eq!(Entry::parse(&v4), Err(HeaderError::Version(4)));
        let mut bad = good.clone();
        bad[OFF_HEADER_START] = 10;
        bad[OFF_HEADER_START + 1] = 0;
        assert_eq!(Entry::parse(&bad), Err(HeaderError::BadLayout));
        let mut bad = good.clone();
        bad[OFF_VARY_LEN] = 200;
        assert_eq!(Entry::parse(&bad), Err(HeaderError::BadLayout));
        let mut bad = good.clone();
        bad[HEADER_SIZE + 1] = b'k';
        assert_eq!(Entry::parse(&bad), Err(HeaderError::NoKeyLine));
        let mut bad = good.clone();
        let n = bad.len();
        bad[n - 1] = b'x';
        assert_eq!(Entry::parse(&bad), Err(HeaderError::KeyNotTerminated));
        // A header_start pointing into the middle of the key cuts it short: refused because the
        // byte before it is not the newline.
        let mut bad = entry("abcdef", b"", b"");
        bad[OFF_HEADER_START] -= 2;
        assert_eq!(Entry::parse(&bad), Err(HeaderError::KeyNotTerminated));
        assert_eq!(Entry::parse(b""), Err(HeaderError::TooShort));
        let two_lines = entry("a\nKEY: b", b"", b"");
        assert_eq!(Entry::parse(&two_lines), Err(HeaderError::KeyNotTerminated));
    }

    #[test]
    fn read_entry_from_a_file_with_a_long_key() {
        let dir = std::env::temp_dir().join(format!("nginx-cache-hdr-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = format!("httpsGETexample.com/{}", "a".repeat(9000));
        let p = dir.join("f");
        std::fs::write(&p, entry(&key, b"", b"Status: 200\r\n\r\nbody")).unwrap();
        let e = read_entry(&File::open(&p).unwrap()).unwrap();
        assert_eq!(e.key, key.as_bytes());
        std::fs::write(&p, b"short").unwrap();
        assert_eq!(
            read_entry(&File::open(&p).unwrap()),
            Err(HeaderError::TooShort)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
