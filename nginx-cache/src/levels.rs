//! `levels=`: how nginx nests cache files in directories cut from the end of the MD5.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::Error;

/// nginx's usual `levels=` for a FastCGI cache, and the default of `--levels`.
pub const DEFAULT_LEVELS: &str = "1:2";

/// The `levels=` parameter of `fastcgi_cache_path`: 0 to 3 levels of 1 or 2 hex characters.
///
/// Each level takes its characters from the *end* of the 32-character name, each later level the
/// characters just before the previous one (`ngx_create_hashed_filename`): with `1:2`,
/// `<h[31]>/<h[29..31]>/<h>`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Levels(Vec<usize>);

impl Levels {
    /// Parses `1:2`-style levels, or the empty string for a flat cache directory.
    pub fn parse(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Ok(Levels(Vec::new()));
        }
        let levels = s
            .split(':')
            .map(|l| match l {
                "1" => Ok(1),
                "2" => Ok(2),
                _ => Err(Error::Levels(format!(
                    "{s:?} is not valid (1 to 3 levels of 1 or 2, like 1:2)"
                ))),
            })
            .collect::<Result<Vec<usize>, Error>>()?;
        if levels.len() > 3 {
            return Err(Error::Levels(format!("{s:?} has more than 3 levels")));
        }
        Ok(Levels(levels))
    }

    /// The directory names, outermost first, that hold the file named `md5_hex`.
    ///
    /// `md5_hex` should be 32 hex characters; a shorter name yields shorter (possibly empty)
    /// components rather than a panic.
    pub fn dirs<'a>(&self, md5_hex: &'a str) -> Vec<&'a str> {
        let mut out = Vec::with_capacity(self.0.len());
        let mut end = md5_hex.len();
        for len in &self.0 {
            let start = end.saturating_sub(*len);
            out.push(md5_hex.get(start..end).unwrap_or(""));
            end = start;
        }
        out
    }

    /// The path of `md5_hex` relative to the cache directory (`c/29/b7f5…029c`).
    pub fn rel_path(&self, md5_hex: &str) -> String {
        let mut s = String::with_capacity(md5_hex.len() + 8);
        for d in self.dirs(md5_hex) {
            s.push_str(d);
            s.push('/');
        }
        s.push_str(md5_hex);
        s
    }

    /// The cache file of `md5_hex` under `base`.
    pub fn file_path(&self, base: &Path, md5_hex: &str) -> PathBuf {
        base.join(self.rel_path(md5_hex))
    }

    /// How many directory levels there are.
    pub fn depth(&self) -> usize {
        self.0.len()
    }

    /// The width (1 or 2) of each level, outermost first.
    pub fn widths(&self) -> &[usize] {
        &self.0
    }
}

impl fmt::Display for Levels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{l}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_documented_levels_example() {
        let h = "b7f54b2df7773722d382f4809d65029c";
        let l = Levels::parse("1:2").unwrap();
        assert_eq!(
            l.file_path(Path::new("/data/nginx/cache"), h),
            Path::new("/data/nginx/cache/c/29/b7f54b2df7773722d382f4809d65029c")
        );
        assert_eq!(
            Levels::parse("2:2:1").unwrap().rel_path(h),
            "9c/02/5/b7f54b2df7773722d382f4809d65029c"
        );
        assert_eq!(Levels::parse("1").unwrap().rel_path(h), format!("c/{h}"));
        assert_eq!(Levels::parse("2").unwrap().rel_path(h), format!("9c/{h}"));
        assert_eq!(
            Levels::parse("1:1:2").unwrap().rel_path(h),
            format!("c/9/02/{h}")
        );
        assert_eq!(
            Levels::parse("2:2").unwrap().rel_path(h),
            format!("9c/02/{h}")
        );
        assert_eq!(Levels::parse("").unwrap().rel_path("ab"), "ab");
        assert_eq!(Levels::parse("1:2").unwrap().to_string(), "1:2");
        for bad in ["3", "1:2:1:1", "1:", "a", "0", ":", "1::2"] {
            assert!(Levels::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Levels::parse("1:2")
                .unwrap()
                .rel_path("0c6d84446df30d38c2c682134d5ee937"),
            "7/93/0c6d84446df30d38c2c682134d5ee937"
        );
    }
}
