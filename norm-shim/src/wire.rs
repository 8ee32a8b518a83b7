//! Byte-level, allocation-free pieces of `libnpp_norm.so` (crate `npp-norm`): re-casing the
//! triplets of a request-target in place, NPP's "repaint" pattern, and [`Stream`], the per-socket
//! state machine that finds HTTP/1.x request lines in a stream of write calls.
//!
//! Everything here is pure and safe so it can be unit-tested and fuzzed; the preload library only
//! adds the C ABI, the lookup of the real functions and a static table of [`Stream`]s. Nothing
//! here allocates, locks or panics, so it may run inside a signal handler.
//!
//! # How a write call is handled
//!
//! The caller of `write`/`send`/`SSL_write`/… hands its bytes to [`Stream::plan`], which answers:
//!
//! * [`Plan::Pass`]: call the real function with the caller's own buffer, then report what it
//!   accepted with [`Stream::passed`].
//! * [`Plan::Accept`]: report that many bytes as written without calling the real function: the
//!   beginning of a request line whose end (CRLF) has not arrived yet is held in the stream's
//!   buffer (at most [`LINE_MAX`] bytes).
//! * [`Plan::Send`]: call the real function with these bytes (the stream's own buffer) instead.
//!   On success report the count with [`Stream::sent`], which says how many of the *caller's*
//!   bytes that covered ([`Sent::Done`]) or that the call must be repeated ([`Sent::Again`]).
//!   On failure report nothing and return the real function's error: the state is unchanged, so
//!   the caller's retry with the same arguments produces the same bytes at the same address
//!   (OpenSSL's retry rule).
//!
//! The bytes that leave always have the caller's length and order; only the case of hex digits
//! inside valid `%xx` triplets of a request-target can differ.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

/// Longest request line (method, target, version, CRLF) that is recognised and re-cased.
/// Longer lines go out unchanged.
pub const LINE_MAX: usize = 16 * 1024;

/// Size of a [`Stream`]'s buffer: a request line plus room for the headers that follow it in the
/// same write, so a whole request usually leaves in one call.
pub const BUF: usize = 32 * 1024;

/// Most triplets a repaint [`Pattern`] remembers (as NPP's `PCT_TRIPLET_CAP`).
pub const PATTERN_CAP: usize = 8192;

/// Most bytes of `/proc/self/cmdline` that [`Pattern::learn`] looks at (as NPP).
pub const CMDLINE_MAX: usize = 8191;

/// How the hex digits of valid triplets are re-cased.
#[derive(Debug, Clone, Copy)]
pub enum Recase<'a> {
    /// Upper-case every hex letter.
    Upper,
    /// Lower-case every hex letter.
    Lower,
    /// NPP's `off`: the i-th triplet takes the case of the i-th triplet of the command-line URL.
    Repaint(&'a Pattern),
}

/// The case of one hex position of a recorded triplet.
const DIGIT: u8 = 0;
const UPPER: u8 = 1;
const LOWER: u8 = 2;

fn class(b: u8) -> u8 {
    if b.is_ascii_uppercase() {
        UPPER
    } else if b.is_ascii_lowercase() {
        LOWER
    } else {
        DIGIT
    }
}

fn apply_class(b: u8, c: u8) -> u8 {
    match c {
        UPPER => b.to_ascii_uppercase(),
        LOWER => b.to_ascii_lowercase(),
        _ => b,
    }
}

/// The triplet case pattern of the first `http(s)://` URL on the command line (NPP's repaint).
#[derive(Clone)]
pub struct Pattern {
    /// Per triplet: class of the first hex digit in the high nibble, of the second in the low.
    classes: [u8; PATTERN_CAP],
    len: usize,
}

impl Default for Pattern {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pattern").field("len", &self.len).finish()
    }
}

impl Pattern {
    /// An empty pattern (repaint changes nothing).
    pub const fn new() -> Self {
        Pattern {
            classes: [0; PATTERN_CAP],
            len: 0,
        }
    }

    /// Number of triplets recorded.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Records the pattern from a NUL-separated command line (`/proc/self/cmdline`), in place.
    ///
    /// As NPP: only the first [`CMDLINE_MAX`] bytes, stopping at an empty argument; the first
    /// argument starting with `http://` or `https://` (any case); after its authority, if a `/`
    /// or `?` follows, the path and query up to `#`. At most [`PATTERN_CAP`] triplets.
    pub fn learn(&mut self, cmdline: &[u8]) {
        self.len = 0;
        let cmdline = cmdline.get(..CMDLINE_MAX).unwrap_or(cmdline);
        let Some(url) = cmdline
            .split(|&b| b == 0)
            .take_while(|a| !a.is_empty())
            .find(|a| {
                starts_with_ignore_case(a, b"http://") || starts_with_ignore_case(a, b"https://")
            })
        else {
            return;
        };
        let after_scheme = url
            .iter()
            .position(|&b| b == b':')
            .and_then(|i| url.get(i.saturating_add(3)..))
            .unwrap_or_default();
        let rest = match after_scheme
            .iter()
            .position(|&b| matches!(b, b'/' | b'?' | b'#'))
            .and_then(|i| after_scheme.get(i..))
        {
            Some(r) if matches!(r.first(), Some(b'/' | b'?')) => r,
            _ => return,
        };
        let span = rest.split(|&b| b == b'#').next().unwrap_or_default();
        for i in Triplets::new(span) {
            let (Some(&a), Some(&b)) = (span.get(i.wrapping_add(1)), span.get(i.wrapping_add(2)))
            else {
                continue;
            };
            let Some(slot) = self.classes.get_mut(self.len) else {
                break;
            };
            *slot = (class(a) << 4) | class(b);
            self.len = self.len.saturating_add(1);
        }
    }

    fn get(&self, i: usize) -> Option<(u8, u8)> {
        if i >= self.len {
            return None;
        }
        self.classes.get(i).map(|&c| (c >> 4, c & 0x0f))
    }
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.get(..prefix.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// Positions of the `%` of every valid triplet in a span, left to right; after a triplet the
/// scan resumes behind it, after anything else at the next byte (so `%%41` has one, at 1).
struct Triplets<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Triplets<'a> {
    fn new(s: &'a [u8]) -> Self {
        Triplets { s, i: 0 }
    }
}

impl Iterator for Triplets<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        loop {
            let i = self.i;
            let rest = self.s.get(i..)?;
            match rest {
                [b'%', a, b, ..] if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => {
                    self.i = i.saturating_add(3);
                    return Some(i);
                }
                [] => return None,
                _ => self.i = i.saturating_add(1),
            }
        }
    }
}

fn recased_pair(a: u8, b: u8, n: usize, how: Recase<'_>) -> (u8, u8) {
    match how {
        Recase::Upper => (a.to_ascii_uppercase(), b.to_ascii_uppercase()),
        Recase::Lower => (a.to_ascii_lowercase(), b.to_ascii_lowercase()),
        Recase::Repaint(p) => match p.get(n) {
            Some((ca, cb)) => (apply_class(a, ca), apply_class(b, cb)),
            None => (a, b),
        },
    }
}

/// Re-cases the hex digits of every valid `%xx` triplet in `span` in place. Nothing else changes:
/// not the length, not invalid sequences, not raw bytes.
pub fn recase_in_place(span: &mut [u8], how: Recase<'_>) {
    let mut n = 0usize;
    let mut i = 0usize;
    while let Some(rel) = Triplets::new(span.get(i..).unwrap_or_default()).next() {
        let at = i.saturating_add(rel);
        if let Some([_, a, b]) = span.get_mut(at..at.saturating_add(3)) {
            (*a, *b) = recased_pair(*a, *b, n, how);
        }
        n = n.saturating_add(1);
        i = at.saturating_add(3);
    }
}

/// Whether [`recase_in_place`] would change `span`.
pub fn would_change(span: &[u8], how: Recase<'_>) -> bool {
    Triplets::new(span).enumerate().any(|(n, at)| {
        match (span.get(at.wrapping_add(1)), span.get(at.wrapping_add(2))) {
            (Some(&a), Some(&b)) => recased_pair(a, b, n, how) != (a, b),
            _ => false,
        }
    })
}

/// Methods that never carry a body from wget or curl; after any other method's headers the
/// stream stops holding bytes back, since a body could look like the start of a request line.
const BODYLESS: [&[u8]; 6] = [b"GET", b"HEAD", b"DELETE", b"OPTIONS", b"TRACE", b"CONNECT"];

/// Where the line scanner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Method,
    TargetStart,
    Target,
    /// Index into `HTTP/d.d\r\n`.
    Version(u8),
}

/// Outcome of feeding one byte to [`LineScan`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    More,
    Complete,
    Invalid,
}

/// An incremental check of `METHOD SP target SP HTTP/d.d CRLF` (method: 1 to 24 of `A-Z` and
/// `-`; target: no space, no control byte; raw bytes ≥ 0x80 are allowed, curl sends them).
#[derive(Debug, Clone, Copy)]
struct LineScan {
    at: At,
    pos: usize,
    method_len: usize,
    target_start: usize,
    target_end: usize,
}

const MAX_METHOD: usize = 24;

impl LineScan {
    const fn new() -> Self {
        LineScan {
            at: At::Method,
            pos: 0,
            method_len: 0,
            target_start: 0,
            target_end: 0,
        }
    }

    fn feed(&mut self, b: u8) -> Step {
        let pos = self.pos;
        self.pos = pos.saturating_add(1);
        match self.at {
            At::Method => match b {
                b'A'..=b'Z' | b'-' if pos < MAX_METHOD => Step::More,
                b' ' if pos > 0 => {
                    self.method_len = pos;
                    self.at = At::TargetStart;
                    Step::More
                }
                _ => Step::Invalid,
            },
            At::TargetStart | At::Target => match b {
                b' ' if self.at == At::Target => {
                    self.target_end = pos;
                    self.at = At::Version(0);
                    Step::More
                }
                0..=0x20 | 0x7f => Step::Invalid,
                _ => {
                    if self.at == At::TargetStart {
                        self.target_start = pos;
                        self.at = At::Target;
                    }
                    Step::More
                }
            },
            At::Version(k) => {
                let ok = match k {
                    0..=4 => b"HTTP/".get(usize::from(k)) == Some(&b),
                    5 | 7 => b.is_ascii_digit(),
                    6 => b == b'.',
                    8 => b == b'\r',
                    _ => b == b'\n',
                };
                if !ok {
                    Step::Invalid
                } else if k >= 9 {
                    Step::Complete
                } else {
                    self.at = At::Version(k.saturating_add(1));
                    Step::More
                }
            }
        }
    }
}

/// What the hook does with one call's bytes; see the [module docs](self).
#[derive(Debug, PartialEq, Eq)]
pub enum Plan<'a> {
    /// Call the real function with the caller's buffer, then [`Stream::passed`].
    Pass,
    /// Return this count to the caller without calling the real function.
    Accept(usize),
    /// Call the real function with these bytes instead, then [`Stream::sent`] on success.
    Send(&'a [u8]),
}

/// What a successful [`Plan::Send`] amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Return this many bytes (always > 0) to the caller as written.
    Done(usize),
    /// None of the caller's bytes were covered yet: plan the same call again.
    Again,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No bytes held; a request line may start at the next call.
    Idle,
    /// `buf[..end]` is the beginning of a request line, already reported as written.
    Assembling,
    /// `buf[start..end]` goes out instead of the caller's bytes: the first `owed` were already
    /// reported as written (held while assembling), the rest stand for the caller's next bytes.
    Substituting,
}

/// The request-line state of one socket (or one TLS session). See the [module docs](self).
///
/// About 32 KiB: keep it in static storage, never on a (signal) stack.
#[derive(Clone)]
pub struct Stream {
    buf: [u8; BUF],
    phase: Phase,
    start: usize,
    end: usize,
    owed: usize,
    /// Caller bytes covered by the last [`Plan::Send`].
    covered: usize,
    scan: LineScan,
    /// Between a request line and the blank line ending its headers.
    in_headers: bool,
    /// Bytes of `\r\n\r\n` matched so far in the headers.
    crlf_run: u8,
    /// The current request's method may carry a body.
    body_method: bool,
    /// Past the headers of a request with a body, or bytes that were not a request line at all:
    /// never hold bytes back again (complete lines at a call start are still re-cased).
    opaque: bool,
}

impl Default for Stream {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("phase", &self.phase)
            .field("start", &self.start)
            .field("end", &self.end)
            .field("owed", &self.owed)
            .field("in_headers", &self.in_headers)
            .field("opaque", &self.opaque)
            .finish()
    }
}

impl Stream {
    /// A fresh stream (usable in a `static`).
    pub const fn new() -> Self {
        Stream {
            buf: [0; BUF],
            phase: Phase::Idle,
            start: 0,
            end: 0,
            owed: 0,
            covered: 0,
            scan: LineScan::new(),
            in_headers: false,
            crlf_run: 0,
            body_method: false,
            opaque: false,
        }
    }

    /// Forgets everything (held bytes included) without touching the buffer's contents, so it
    /// never builds a 32 KiB temporary.
    pub fn reset(&mut self) {
        self.phase = Phase::Idle;
        self.start = 0;
        self.end = 0;
        self.owed = 0;
        self.covered = 0;
        self.scan = LineScan::new();
        self.in_headers = false;
        self.crlf_run = 0;
        self.body_method = false;
        self.opaque = false;
    }

    /// True when the stream holds nothing worth remembering (its table slot can be reused).
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Idle && !self.in_headers && !self.opaque
    }

    /// Bytes already reported as written to the caller that have not left yet.
    pub fn owed(&self) -> usize {
        match self.phase {
            Phase::Idle => 0,
            Phase::Assembling => self.end,
            Phase::Substituting => self.owed,
        }
    }

    /// Decides what to do with one call's bytes.
    pub fn plan(&mut self, input: &[u8], how: Recase<'_>) -> Plan<'_> {
        if input.is_empty() {
            return Plan::Pass;
        }
        match self.phase {
            Phase::Assembling => self.plan_assembling(input, how),
            Phase::Substituting => self.plan_substituting(input, how),
            Phase::Idle => self.plan_fresh(input, how),
        }
    }

    fn plan_fresh(&mut self, input: &[u8], how: Recase<'_>) -> Plan<'_> {
        let mut scan = LineScan::new();
        let window = input.get(..LINE_MAX).unwrap_or(input);
        for (i, &b) in window.iter().enumerate() {
            match scan.feed(b) {
                Step::More => {}
                Step::Invalid => return Plan::Pass,
                Step::Complete => {
                    let line_len = i.saturating_add(1);
                    self.begin_request(input.get(..scan.method_len).unwrap_or_default());
                    let target = input
                        .get(scan.target_start..scan.target_end)
                        .unwrap_or_default();
                    if !would_change(target, how) {
                        return Plan::Pass;
                    }
                    let (Some(dst), Some(src)) =
                        (self.buf.get_mut(..line_len), input.get(..line_len))
                    else {
                        return Plan::Pass;
                    };
                    dst.copy_from_slice(src);
                    if let Some(t) = self.buf.get_mut(scan.target_start..scan.target_end) {
                        recase_in_place(t, how);
                    }
                    self.phase = Phase::Substituting;
                    self.start = 0;
                    self.owed = 0;
                    self.end = line_len;
                    return self.plan_substituting(input, how);
                }
            }
        }
        // No complete line in this call. Hold it only if it is the whole beginning of a line,
        // at a message boundary (never inside a body).
        if window.len() < input.len() || self.in_headers || self.opaque {
            return Plan::Pass;
        }
        let Some(dst) = self.buf.get_mut(..input.len()) else {
            return Plan::Pass;
        };
        dst.copy_from_slice(input);
        self.scan = scan;
        self.phase = Phase::Assembling;
        self.start = 0;
        self.end = input.len();
        Plan::Accept(input.len())
    }

    fn begin_request(&mut self, method: &[u8]) {
        self.in_headers = true;
        self.crlf_run = 0;
        self.body_method = !BODYLESS.contains(&method);
    }

    fn plan_assembling(&mut self, input: &[u8], how: Recase<'_>) -> Plan<'_> {
        let held = self.end;
        for &b in input {
            let Some(slot) = self.buf.get_mut(self.end).filter(|_| self.end < LINE_MAX) else {
                return self.give_up(held, how);
            };
            *slot = b;
            self.end = self.end.saturating_add(1);
            match self.scan.feed(b) {
                Step::More => {}
                Step::Invalid => return self.give_up(held, how),
                Step::Complete => {
                    let scan = self.scan;
                    let method = self.buf.get(..scan.method_len).unwrap_or_default();
                    let body = !BODYLESS.contains(&method);
                    self.in_headers = true;
                    self.crlf_run = 0;
                    self.body_method = body;
                    if let Some(t) = self.buf.get_mut(scan.target_start..scan.target_end) {
                        recase_in_place(t, how);
                    }
                    self.phase = Phase::Substituting;
                    self.start = 0;
                    self.owed = held;
                    return self.plan_substituting(input, how);
                }
            }
        }
        Plan::Accept(input.len())
    }

    /// The held bytes are not (or not the start of a recognisable) request line: they leave
    /// unchanged, before anything else, and the stream stops holding bytes back.
    fn give_up(&mut self, held: usize, how: Recase<'_>) -> Plan<'_> {
        self.opaque = true;
        self.in_headers = false;
        self.phase = Phase::Substituting;
        self.start = 0;
        self.owed = held;
        self.end = held;
        self.plan_substituting(&[], how)
    }

    fn plan_substituting(&mut self, input: &[u8], how: Recase<'_>) -> Plan<'_> {
        let sub_start = self.start.saturating_add(self.owed).min(self.end);
        let pending = self.buf.get(sub_start..self.end).unwrap_or_default();
        let m = pending.len().min(input.len());
        let same = match (pending.get(..m), input.get(..m)) {
            (Some(p), Some(i)) => p.eq_ignore_ascii_case(i),
            _ => false,
        };
        if !same {
            // The caller is not sending what we stand in for (it gave up, or wrote something
            // else): drop the substitute, but what was already reported must still leave.
            self.end = sub_start;
        } else if m == pending.len() {
            // Copy the rest of the call (the headers, usually) behind the line, as far as it fits,
            // so a whole request leaves in one call: fewer short counts, and for TLS one record.
            let rest = input.get(m..).unwrap_or_default();
            let room = BUF.saturating_sub(self.end);
            let take = rest.len().min(room);
            let to = self.end.saturating_add(take);
            if let (Some(dst), Some(src)) = (self.buf.get_mut(self.end..to), rest.get(..take)) {
                dst.copy_from_slice(src);
                self.end = to;
            }
        }
        if self.start >= self.end {
            self.finish();
            return self.plan(input, how);
        }
        let covered_end = if same {
            self.end.min(sub_start.saturating_add(input.len()))
        } else {
            sub_start
        };
        self.covered = covered_end.saturating_sub(sub_start);
        match self.buf.get(self.start..covered_end) {
            Some(bytes) if !bytes.is_empty() => Plan::Send(bytes),
            _ => Plan::Pass,
        }
    }

    fn finish(&mut self) {
        self.phase = Phase::Idle;
        self.start = 0;
        self.end = 0;
        self.owed = 0;
        self.covered = 0;
    }

    /// The real function accepted `n` > 0 bytes of the last [`Plan::Send`].
    pub fn sent(&mut self, n: usize) -> Sent {
        if self.phase != Phase::Substituting || n == 0 {
            return Sent::Again;
        }
        let total = self.owed.saturating_add(self.covered);
        let n = n.min(total);
        let to = self.start.saturating_add(n).min(self.end);
        let mut run = self.crlf_run;
        let mut headers = self.in_headers;
        if let Some(out) = self.buf.get(self.start..to) {
            for &b in out {
                if !headers {
                    break;
                }
                run = crlf_step(run, b);
                headers = run < 4;
            }
        }
        self.crlf_run = run;
        self.headers_seen(headers);
        self.start = to;
        let consumed = n.saturating_sub(self.owed);
        self.owed = self.owed.saturating_sub(n);
        self.covered = self.covered.saturating_sub(consumed);
        if self.start >= self.end {
            self.finish();
        }
        if consumed == 0 {
            Sent::Again
        } else {
            Sent::Done(consumed)
        }
    }

    /// The real function accepted these leading bytes of a [`Plan::Pass`]ed call.
    pub fn passed(&mut self, out: &[u8]) {
        if !self.in_headers {
            return;
        }
        let mut run = self.crlf_run;
        let mut headers = true;
        for &b in out {
            run = crlf_step(run, b);
            if run >= 4 {
                headers = false;
                break;
            }
        }
        self.crlf_run = run;
        self.headers_seen(headers);
    }

    fn headers_seen(&mut self, still_in_headers: bool) {
        if self.in_headers && !still_in_headers {
            self.in_headers = false;
            self.crlf_run = 0;
            if self.body_method {
                self.opaque = true;
            }
        }
    }
}

fn crlf_step(run: u8, b: u8) -> u8 {
    match (run, b) {
        (0 | 2, b'\r') => run.saturating_add(1),
        (1 | 3, b'\n') => run.saturating_add(1),
        (_, b'\r') => 1,
        _ => 0,
    }
}

#[cfg(test)]
#[allow(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::arithmetic_side_effects,
    clippy::panic
)]
mod tests {
    use super::*;

    fn up(s: &str) -> String {
        let mut b = s.as_bytes().to_vec();
        recase_in_place(&mut b, Recase::Upper);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn recase_matches_the_string_functions() {
        for s in [
            "%e6%b0%b4",
            "%%41%zz%2/%4",
            "a%aF%Af%af",
            "%",
            "%e",
            "%e6",
            "x%2fy",
        ] {
            assert_eq!(up(s), crate::upper_triplets(s), "{s}");
            let mut b = s.as_bytes().to_vec();
            recase_in_place(&mut b, Recase::Lower);
            assert_eq!(
                String::from_utf8(b).unwrap(),
                crate::lower_triplets(s),
                "{s}"
            );
        }
    }

    #[test]
    fn repaint_is_positional_from_the_first_url() {
        let mut p = Pattern::new();
        p.learn(b"curl\0-s\0ftp://x/%AA\0HTTPS://h:1/p/%e6%B0%b4?q=%aF#%FF\0https://o/%FF\0");
        assert_eq!(p.len(), 4);
        let mut b = b"/x/%E6%b0%B4/%AF/%e8".to_vec();
        recase_in_place(&mut b, Recase::Repaint(&p));
        assert_eq!(&b, b"/x/%e6%B0%b4/%aF/%e8");
        // A digit position keeps whatever it has.
        let mut q = Pattern::new();
        q.learn(b"wget\0http://h/%4B\0");
        let mut b = b"%4a%bc".to_vec();
        recase_in_place(&mut b, Recase::Repaint(&q));
        assert_eq!(&b, b"%4A%bc");
        // No path, an empty argument before the URL, or only a host: nothing learned.
        for cmd in [
            &b"wget\0http://h\0"[..],
            b"wget\0\0http://h/%41\0",
            b"wget\0http://h#/%41\0",
        ] {
            let mut p = Pattern::new();
            p.learn(cmd);
            assert!(p.is_empty(), "{cmd:?}");
        }
    }

    /// A caller that writes `stream` in chunks of `chunks` sizes through a sink that accepts at
    /// most `sink_max[k]` bytes (0 = fails) at its k-th call; returns what went out and what is
    /// still owed.
    fn run(stream: &[u8], chunks: &[usize], sink_max: &[usize], how: Recase<'_>) -> Vec<u8> {
        let mut st = Box::new(Stream::new());
        let mut out = Vec::new();
        let mut pos = 0;
        let mut c = 0;
        let mut k = 0;
        let mut guard = 0;
        while pos < stream.len() {
            guard += 1;
            assert!(guard < 100_000, "no progress");
            let len = chunks.get(c).copied().unwrap_or(usize::MAX).max(1);
            let input = &stream[pos..pos.saturating_add(len).min(stream.len())];
            let mut sink = |b: &[u8]| -> usize {
                let max = sink_max.get(k).copied().unwrap_or(usize::MAX);
                k += 1;
                let n = b.len().min(max);
                out.extend_from_slice(&b[..n]);
                n
            };
            let r = loop {
                match st.plan(input, how) {
                    Plan::Pass => {
                        let n = sink(input);
                        if n > 0 {
                            st.passed(&input[..n]);
                        }
                        break n;
                    }
                    Plan::Accept(n) => break n,
                    Plan::Send(b) => {
                        let b = b.to_vec();
                        let n = sink(&b);
                        if n == 0 {
                            break 0;
                        }
                        match st.sent(n) {
                            Sent::Done(n) => break n,
                            Sent::Again => {}
                        }
                    }
                }
            };
            assert!(r <= input.len());
            if r > 0 {
                pos += r;
                c += 1;
            }
        }
        let owed = st.owed();
        assert_eq!(out.len() + owed, stream.len());
        out
    }

    const REQ: &[u8] = b"GET /p/%e6%b0%b4/?q=%2f HTTP/1.1\r\nHost: x\r\nX: %ab\r\n\r\n";
    const UP: &[u8] = b"GET /p/%E6%B0%B4/?q=%2F HTTP/1.1\r\nHost: x\r\nX: %ab\r\n\r\n";

    #[test]
    fn whole_request_in_one_call() {
        assert_eq!(run(REQ, &[], &[], Recase::Upper), UP);
        assert_eq!(run(UP, &[], &[], Recase::Lower), REQ);
    }

    #[test]
    fn every_split_and_every_short_write_gives_the_same_line() {
        for split in 1..REQ.len() {
            let got = run(REQ, &[split, 1, 3], &[], Recase::Upper);
            assert_eq!(got, UP, "split at {split}");
            for short in 1..8 {
                let got = run(REQ, &[split], &[short, 0, short, 1, 0, 2], Recase::Upper);
                assert_eq!(got, UP, "split {split} short {short}");
            }
        }
        for n in 1..6 {
            assert_eq!(run(REQ, &[n; 100], &[], Recase::Upper), UP, "chunks of {n}");
        }
    }

    #[test]
    fn keep_alive_requests_are_each_recased() {
        let two = [REQ, REQ].concat();
        assert_eq!(
            run(&two, &[REQ.len(), 5, 9], &[], Recase::Upper),
            [UP, UP].concat()
        );
    }

    #[test]
    fn non_requests_and_unchanged_lines_pass_untouched() {
        for s in [
            &b"get /%aa HTTP/1.1\r\n"[..],
            b"GET /%aa HTTP/1.1\n",
            b"GET  /%aa HTTP/1.1\r\n",
            b"GET /%aa HTTP/1.1 x\r\n",
            b"GET /%aa\r\n",
            b"GET /%AA HTTP/1.1\r\n",
            b"GET /%zz%4 HTTP/1.1\r\n",
        ] {
            for split in 1..s.len() {
                assert_eq!(run(s, &[split], &[], Recase::Upper), s, "{s:?} at {split}");
            }
        }
        // A line is only looked for at the start of a call.
        let s = b"\x16\x03\x01\x00GET /%aa HTTP/1.1\r\n";
        assert_eq!(run(s, &[], &[], Recase::Upper), s);
    }

    #[test]
    fn a_body_that_looks_like_a_line_is_never_held() {
        let mut st = Box::new(Stream::new());
        let req = b"POST /f HTTP/1.1\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(st.plan(req, Recase::Upper), Plan::Pass);
        st.passed(req);
        assert_eq!(st.plan(b"PUT /%aa ", Recase::Upper), Plan::Pass);
        assert!(!st.is_idle());
        // After a GET's headers, a split line is held again.
        let mut st = Box::new(Stream::new());
        let req = b"GET /f HTTP/1.1\r\n\r\n";
        assert_eq!(st.plan(req, Recase::Upper), Plan::Pass);
        st.passed(req);
        assert!(st.is_idle());
        assert_eq!(st.plan(b"GET /%a", Recase::Upper), Plan::Accept(7));
        assert_eq!(st.owed(), 7);
    }

    #[test]
    fn a_line_that_is_too_long_leaves_unchanged() {
        let mut s = b"GET /".to_vec();
        s.extend(std::iter::repeat_n(b'a', LINE_MAX));
        s.extend_from_slice(b"%aa HTTP/1.1\r\n\r\n");
        assert_eq!(run(&s, &[], &[], Recase::Upper), s);
        assert_eq!(run(&s, &[100; 1000], &[], Recase::Upper), s);
    }

    #[test]
    fn a_retry_after_failure_gets_the_same_bytes_at_the_same_address() {
        let mut st = Box::new(Stream::new());
        let (p1, l1) = match st.plan(REQ, Recase::Upper) {
            Plan::Send(b) => (b.as_ptr(), b.len()),
            other => panic!("{other:?}"),
        };
        // The real function failed (WANT_WRITE): no report, the caller retries the same call.
        match st.plan(REQ, Recase::Upper) {
            Plan::Send(b) => {
                assert_eq!((b.as_ptr(), b.len()), (p1, l1));
                assert_eq!(b, UP);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(st.sent(l1), Sent::Done(REQ.len()));
        assert!(st.is_idle());
    }

    #[test]
    fn a_caller_that_changes_its_mind_still_gets_held_bytes_out_first() {
        let mut st = Box::new(Stream::new());
        assert_eq!(st.plan(b"GET /%a", Recase::Upper), Plan::Accept(7));
        // Next call completes the line, the real function sends only the held 7 bytes…
        match st.plan(b"a HTTP/1.1\r\n\r\n", Recase::Upper) {
            Plan::Send(b) => assert_eq!(b, b"GET /%AA HTTP/1.1\r\n\r\n"),
            other => panic!("{other:?}"),
        }
        assert_eq!(st.sent(7), Sent::Again);
        // …then the caller writes something else: the substitute is dropped, nothing is owed.
        assert_eq!(st.plan(b"zzz", Recase::Upper), Plan::Pass);
        assert_eq!(st.owed(), 0);
    }
}
