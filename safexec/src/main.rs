//! The `safexec` binary.
fn main() {
    std::process::exit(safexec::main());
}
