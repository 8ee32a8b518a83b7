//! Purge service: socket-activated, per-caller purges with re-warm, SpinupWP and ngx_cache_purge protocols
#![forbid(unsafe_code)]

fn main() {}
