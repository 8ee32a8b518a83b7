//! Request-target normalizer (placeholder; implemented under issue 2).
#![forbid(unsafe_code)]
