//! cache-preload (placeholder; implemented under issues 5 and 6).
#![forbid(unsafe_code)]
