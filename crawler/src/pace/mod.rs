//! How fast to go: the adaptive concurrency controller, the `--max-rps` token bucket and the
//! load gate. Pure state machines fed with outcomes and instants.

pub mod adaptive;
pub mod cpu;
