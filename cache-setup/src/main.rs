//! Finds every cached site in the live nginx and PHP-FPM configuration, checks the known traps and writes the configuration
#![forbid(unsafe_code)]

fn main() {}
