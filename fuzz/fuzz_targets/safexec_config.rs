//! Fuzz target: the `/etc/safexec.conf` parser never panics, and whatever it accepts prints
//! back to a text that parses to the same configuration.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safexec::config::{parse, Config};

fuzz_target!(|data: &[u8]| {
    let Ok(cfg) = parse(data) else { return };
    let printed = cfg.to_string();
    let again: Config = match parse(printed.as_bytes()) {
        Ok(c) => c,
        Err(e) => panic!("printed config does not parse: {e}\n{printed}"),
    };
    assert_eq!(again, cfg, "round trip changed the config:\n{printed}");
});
