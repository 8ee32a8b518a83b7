//! The `cache-preload` binary.
fn main() {}
