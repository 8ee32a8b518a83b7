//! End-to-end harness (placeholder; implemented under issue 7).
