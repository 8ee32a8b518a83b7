//! nginx cache knowledge shared by `cache-preload` and `cache-purge`.
//!
//! nginx evaluates `fastcgi_cache_key` (or `proxy_cache_key`), takes the MD5 of the resulting
//! bytes, names the file with its 32 lower-case hex digits and nests it in directories cut from
//! the *end* of that hex string (`levels=1:2` → `c/29/b7f5…029c`). Each file starts with a binary
//! [`Header`], then `\nKEY: <key>\n`, then the stored upstream response. A response that carried
//! `Vary` may also be stored under a [`variant_hash`] name.
//!
//! | module item | what |
//! |---|---|
//! | [`KeyTemplate`], [`KeyRequest`], [`KeyParts`] | parse and evaluate a key template, split a key back |
//! | [`Levels`] | `levels=` and the relative path of an MD5 |
//! | [`md5()`], [`md5_hex`] | the digest nginx names files with |
//! | [`Header`], [`Entry`], [`read_entry`] | the on-disk header (version 5, LP64) and its `KEY:` line, read at the fixed offset |
//! | [`variant_hash`] | the file name nginx gives a `Vary` variant |
//! | [`is_cache_file_name`], [`is_temp_file_name`], [`is_temp_dir_name`] | names in a cache tree |
//! | [`replay_target`] | the request to re-send for a key found on disk |
//!
//! Nothing here deletes anything; the fd-relative deletion engine is `cache_purge`'s.
#![forbid(unsafe_code)]

mod error;
mod header;
#[cfg(feature = "index")]
pub mod index;
mod key;
mod levels;
mod names;
mod replay;
mod variant;

pub use error::Error;
pub use header::{
    read_entry, Entry, Header, HeaderError, HEADER_SIZE, HEADER_VERSION, KEY_MARK, KEY_OFFSET,
    MAX_HEADER_START,
};
pub use key::{KeyParts, KeyRequest, KeyTemplate, Part, Var, DEFAULT_KEY};
pub use levels::{Levels, DEFAULT_LEVELS};
pub use names::{is_cache_file_name, is_temp_dir_name, is_temp_file_name};
pub use replay::{replay_target, ReplayTarget};
pub use variant::variant_hash;

use md5::{Digest, Md5};

/// Flags for opening a file found in a cache tree for reading: `O_NOFOLLOW` (a planted symlink
/// is refused, not followed), `O_NONBLOCK` (a planted FIFO does not block the open),
/// `O_NOCTTY` and `O_CLOEXEC`. Check the opened file's type before reading it.
pub const OPEN_FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;

/// The 16-byte MD5 digest of `data` (nginx's `NGX_HTTP_CACHE_KEY_LEN` bytes).
pub fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// The MD5 of `data` as 32 lower-case hex characters: the name nginx gives its cache file.
pub fn md5_hex(data: &[u8]) -> String {
    hex(&md5(data))
}

/// `key` with the hex digits of every valid `%xx` triplet upper-cased: the same for every case
/// form of one URL (`%e6`, `%E6`, `%e6`…), which nginx stores as distinct keys.
pub fn fold_triplets(key: &[u8]) -> Vec<u8> {
    let mut b = key.to_vec();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b'%' && b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit() {
            b[i + 1].make_ascii_uppercase();
            b[i + 2].make_ascii_uppercase();
            i += 3;
        } else {
            i += 1;
        }
    }
    b
}

/// 16 bytes as 32 lower-case hex characters.
pub fn hex(bytes: &[u8; 16]) -> String {
    let mut s = String::with_capacity(32);
    for b in bytes {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    s
}

/// Parses 32 hex characters back into 16 bytes (`None` for anything else).
pub fn unhex(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = char::from(b[2 * i]).to_digit(16)?;
        let lo = char::from(b[2 * i + 1]).to_digit(16)?;
        *o = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_rfc1321_and_nginx_examples() {
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            (
                "httpsGETexample.com/product/%E6%B0%B4%E6%BB%B4/",
                "a7cd573cd581bc9237669cb237756031",
            ),
            (
                "httpsHEADexample.com/product/%e6%b0%b4%e6%bb%b4/",
                "e5d4eccab11e1b49904903589ed24d67",
            ),
            ("httpsGETexample.com/", "0c6d84446df30d38c2c682134d5ee937"),
        ];
        for (input, want) in cases {
            assert_eq!(md5_hex(input.as_bytes()), want, "md5({input:?})");
            assert_eq!(unhex(want).map(|b| hex(&b)).as_deref(), Some(want));
        }
        assert_eq!(unhex("xyz"), None);
        assert_eq!(fold_triplets(b"/%e6%B0x%zz%a"), b"/%E6%B0x%zz%a");
        assert_eq!(unhex(&"g".repeat(32)), None);
    }
}
