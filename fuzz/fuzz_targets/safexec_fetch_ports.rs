//! safexec's Landlock port list (issue 15): `fetch_ports` reads caller-controlled argv (URL
//! operands, `-e http_proxy=...`). It never panics, never returns port 0 or a duplicate, and
//! every port it returns is either a scheme default (80, 443) or written in the input.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;
use safexec::confine::fetch_ports;

fuzz_target!(|data: &[u8]| {
    let args: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    let ports = fetch_ports(&args);
    let text = String::from_utf8_lossy(data);
    if !text.contains("://") {
        assert!(ports.is_empty(), "{ports:?}");
    }
    // Every number written after a ':' (as u16::from_str reads it: an optional '+', digits).
    let written: Vec<u16> = text
        .match_indices(':')
        .filter_map(|(i, _)| {
            let rest = &text[i + 1..];
            let sign = usize::from(rest.starts_with('+'));
            let digits = rest[sign..].bytes().take_while(u8::is_ascii_digit).count();
            rest[..sign + digits].parse().ok()
        })
        .collect();
    for (i, p) in ports.iter().enumerate() {
        assert_ne!(*p, 0);
        assert!(!ports[..i].contains(p), "duplicate {p}");
        assert!(
            *p == 80 || *p == 443 || written.contains(p),
            "{p} not in {text:?}"
        );
    }
});
