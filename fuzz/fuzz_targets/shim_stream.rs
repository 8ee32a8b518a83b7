//! Drives `norm_shim::wire::Stream` (the request-line assembler inside libnpp_norm.so) the way a
//! client and the real write function would: the input is split into a byte stream, write sizes
//! and the sink's acceptance pattern (short writes, failures). Invariants: no panic; every call
//! reports at most its length; what leaves plus what is still owed equals the stream; only the
//! case of hex digits changes; and the mode's re-casing is idempotent on the output.
//!
//! Layout: byte 0 = mode (upper/lower/repaint), byte 1 = number of control bytes n, then n bytes
//! (high nibble: chunk size, low nibble: sink limit, 0 = fail), then the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use norm_shim::wire::{Pattern, Plan, Recase, Sent, Stream};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let n = usize::from(data[1]).min(data.len() - 2);
    let ctl = &data[2..2 + n];
    let stream = &data[2 + n..];
    let mut pattern = Pattern::new();
    pattern.learn(b"wget\0http://h/%aB%Cd%e6\0");
    let how = match data[0] % 3 {
        0 => Recase::Upper,
        1 => Recase::Lower,
        _ => Recase::Repaint(&pattern),
    };
    let mut st = Box::new(Stream::new());
    let mut out: Vec<u8> = Vec::new();
    let mut pos = 0;
    let mut k = 0usize;
    let mut steps = 0;
    let mut ctl_at = |i: usize| ctl.get(i % ctl.len().max(1)).copied().unwrap_or(0xff);
    while pos < stream.len() {
        steps += 1;
        assert!(steps < 1_000_000, "no progress");
        let c = ctl_at(k);
        let len = usize::from(c >> 4).max(1) * 7;
        let input = &stream[pos..(pos + len).min(stream.len())];
        let r = loop {
            let limit = usize::from(ctl_at(k) & 0x0f);
            k += 1;
            // After many failures, let the sink accept everything so the run ends.
            let limit = if k > 4 * ctl.len() + 64 { usize::MAX } else { limit * 5 };
            match st.plan(input, how) {
                Plan::Pass => {
                    let m = input.len().min(limit);
                    out.extend_from_slice(&input[..m]);
                    if m > 0 {
                        st.passed(&input[..m]);
                    }
                    break m;
                }
                Plan::Accept(m) => break m,
                Plan::Send(b) => {
                    let m = b.len().min(limit);
                    out.extend_from_slice(&b[..m]);
                    if m == 0 {
                        break 0;
                    }
                    match st.sent(m) {
                        Sent::Done(m) => break m,
                        Sent::Again => {}
                    }
                }
            }
        };
        assert!(r <= input.len());
        pos += r;
    }
    assert_eq!(out.len() + st.owed(), stream.len());
    assert!(out.eq_ignore_ascii_case(&stream[..out.len()]));
    for (i, (a, b)) in out.iter().zip(stream).enumerate() {
        if a != b {
            assert!(a.is_ascii_hexdigit() && i > 0, "byte {i} changed: {b} -> {a}");
        }
    }
});
