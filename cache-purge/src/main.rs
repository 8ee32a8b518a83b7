//! Purges nginx cache entries exactly, by prefix or all, as the cache owner
#![forbid(unsafe_code)]

fn main() {}
