//! Log formats.

pub mod wget_log;
