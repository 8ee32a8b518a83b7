//! Names found in a cache tree: entries, nginx's in-flight temp files and temp directories.

/// Whether `name` is an nginx cache file name: 32 lower-case hex digits.
pub fn is_cache_file_name(name: &[u8]) -> bool {
    name.len() == 32 && name.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `name` is an in-flight temp file of `use_temp_path=off`: `<md5>.<10 digits>`.
///
/// nginx writes the response to `<final name>.%010uD` and renames it into place when complete;
/// deleting it makes that rename fail, so purges leave such files alone (as nginx's loader does).
pub fn is_temp_file_name(name: &[u8]) -> bool {
    name.len() == 43
        && is_cache_file_name(&name[..32])
        && name[32] == b'.'
        && name[33..].iter().all(u8::is_ascii_digit)
}

/// Whether a directory named `name` holds temp files rather than entries: nginx's
/// `*_temp_path` directories (`fastcgi_temp`, `proxy_temp`, …) when placed inside the cache, and
/// `temp`, which nginx's loader skips.
pub fn is_temp_dir_name(name: &[u8]) -> bool {
    name == b"temp" || name.ends_with(b"_temp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let h = b"0c6d84446df30d38c2c682134d5ee937";
        assert!(is_cache_file_name(h));
        assert!(!is_cache_file_name(b"0C6D84446DF30D38C2C682134D5EE937"));
        assert!(!is_cache_file_name(&h[..31]));
        assert!(is_temp_file_name(
            b"0c6d84446df30d38c2c682134d5ee937.0000000042"
        ));
        assert!(!is_temp_file_name(
            b"0c6d84446df30d38c2c682134d5ee937.000000042"
        ));
        assert!(!is_temp_file_name(
            b"0c6d84446df30d38c2c682134d5ee937.00000000x2"
        ));
        assert!(!is_cache_file_name(
            b"0c6d84446df30d38c2c682134d5ee937.0000000042"
        ));
        for d in [&b"fastcgi_temp"[..], b"proxy_temp", b"temp"] {
            assert!(is_temp_dir_name(d));
        }
        assert!(!is_temp_dir_name(b"a"));
        assert!(!is_temp_dir_name(b"temporary"));
    }
}
