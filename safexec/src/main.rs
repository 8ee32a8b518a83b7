//! The `safexec` binary.
fn main() {}
