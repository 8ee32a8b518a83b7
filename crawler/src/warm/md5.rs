//! MD5, only to compute the file names nginx gives cache entries: the `md-5` crate through
//! `nginx-cache`, which owns this knowledge now. Kept as a module so existing paths still resolve.

pub use nginx_cache::md5 as digest;
pub use nginx_cache::md5_hex as hex_digest;
