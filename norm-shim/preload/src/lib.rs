//! `libnpp_norm.so`: re-cases the `%xx` triplets of HTTP/1.x request lines that wget and curl
//! write, so preloaded cache keys match what visitors send. A drop-in for NPP's C library.
//!
//! # Contract (NPP's, see `shared/research/norm-spec.md` §1–§3)
//!
//! `PCTNORM_CASE`, read once per process, case-insensitive:
//!
//! | value | request-target triplets |
//! |---|---|
//! | unset or empty, `upper` | hex letters upper-cased |
//! | `lower` | hex letters lower-cased |
//! | `off`, and **any other value** | "repaint": the i-th triplet takes the case of the i-th triplet of the first `http(s)://` argument in `/proc/self/cmdline` |
//!
//! Only valid triplets inside the request-target (between the first and second space of
//! `METHOD SP target SP HTTP/d.d CRLF`) change, and only in case: never a length, never a byte
//! position, never a header or body.
//!
//! # What it fixes in the C library (§7)
//!
//! * It acts on sockets only (`fstat`, `S_ISSOCK`) and on TLS sessions; files and pipes are never
//!   touched.
//! * A request line split over several writes is assembled in a bounded per-socket buffer
//!   ([`norm_shim::wire::Stream`]) until its CRLF, and re-cased whole. Lines up to
//!   [`norm_shim::wire::LINE_MAX`] bytes, any upper-case method.
//! * It hooks `write`, `writev`, `send`, `sendto`, `sendmsg`, `SSL_write`, `SSL_write_ex` and
//!   `gnutls_record_send`, each through `dlsym(RTLD_NEXT)`.
//! * A short write never leaves a half re-cased line: the rest goes out from the shim's copy.
//!   A failed TLS write is retried from the same address with the same bytes (OpenSSL's rule).
//! * Nothing allocates, locks or panics in a hook: per-socket state lives in a static table of
//!   slots taken with an atomic try-lock (if a slot is busy, e.g. a signal handler writes while
//!   the thread it interrupted is inside the hook, or the table is full, the call passes through
//!   unchanged); configuration and symbol lookup are initialised with atomics, never a lock.
//!
//! # Limits
//!
//! HTTP/2 and HTTP/3 have no request line (curl over TLS negotiates h2 unless `--http1.1`).
//! Static binaries, and TLS stacks other than OpenSSL and GnuTLS, cannot be hooked. glibc's stdio
//! writes do not go through `write`. A `sendmsg` carrying control data passes unchanged.
#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use core::cell::UnsafeCell;
use core::ffi::{c_int, c_void, CStr};
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};

use libc::{iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};
use norm_shim::wire::{Pattern, Plan, Recase, Sent, Stream, CMDLINE_MAX};

// ---------------------------------------------------------------------------------------------
// Configuration: PCTNORM_CASE and the repaint pattern, set once without a lock.

const MODE_UNSET: u8 = 0;
const MODE_BUSY: u8 = 1;
const MODE_UPPER: u8 = 2;
const MODE_LOWER: u8 = 3;
const MODE_REPAINT: u8 = 4;

static MODE: AtomicU8 = AtomicU8::new(MODE_UNSET);

/// The repaint pattern and the scratch buffer it is learned from.
struct Learned {
    pattern: UnsafeCell<Pattern>,
    cmdline: UnsafeCell<[u8; CMDLINE_MAX]>,
}

// SAFETY: both cells are written only by the one caller that wins the MODE_UNSET → MODE_BUSY
// exchange in `recase`, before it publishes the mode with a Release store; they are read (the
// pattern only) after an Acquire load has seen the published mode, and never written again.
unsafe impl Sync for Learned {}

static LEARNED: Learned = Learned {
    pattern: UnsafeCell::new(Pattern::new()),
    cmdline: UnsafeCell::new([0; CMDLINE_MAX]),
};

/// The configured re-casing, initialising it on first use. `None` while another caller (another
/// thread, or the very code a signal handler interrupted) is initialising: pass through then,
/// rather than wait.
fn recase() -> Option<Recase<'static>> {
    match MODE.load(Ordering::Acquire) {
        MODE_UPPER => Some(Recase::Upper),
        MODE_LOWER => Some(Recase::Lower),
        MODE_REPAINT => {
            // SAFETY: the pattern was fully written before MODE_REPAINT was published (see
            // `Learned`) and is never written again, so a shared reference is sound.
            Some(Recase::Repaint(unsafe { &*LEARNED.pattern.get() }))
        }
        MODE_UNSET => {
            if MODE
                .compare_exchange(MODE_UNSET, MODE_BUSY, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                let mode = configure();
                MODE.store(mode, Ordering::Release);
                recase()
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Reads `PCTNORM_CASE` (and for repaint the command line). Runs once, in the caller that won
/// the exchange in [`recase`].
fn configure() -> u8 {
    // SAFETY: getenv reads `environ` without allocating; the name is a NUL-terminated literal.
    // The returned pointer, if not null, is a NUL-terminated string that stays valid while we
    // read it here (nothing in this process changes the environment in between).
    let value = unsafe {
        let p = libc::getenv(c"PCTNORM_CASE".as_ptr());
        (!p.is_null()).then(|| CStr::from_ptr(p).to_bytes())
    };
    match value {
        None | Some(b"") => MODE_UPPER,
        Some(v) if v.eq_ignore_ascii_case(b"upper") => MODE_UPPER,
        Some(v) if v.eq_ignore_ascii_case(b"lower") => MODE_LOWER,
        // `off` and anything unknown: repaint from the command line (the contract).
        Some(_) => {
            // SAFETY: only the initialising caller gets here (see `Learned`), so these are the
            // only references to the two cells while they exist.
            let (pattern, buf) =
                unsafe { (&mut *LEARNED.pattern.get(), &mut *LEARNED.cmdline.get()) };
            let n = read_cmdline(buf);
            pattern.learn(buf.get(..n).unwrap_or_default());
            MODE_REPAINT
        }
    }
}

/// Reads `/proc/self/cmdline` into `buf` with open/read/close (async-signal-safe); returns the
/// byte count (0 if unreadable).
fn read_cmdline(buf: &mut [u8]) -> usize {
    // SAFETY: the path is a NUL-terminated literal.
    let fd = unsafe {
        libc::open(
            c"/proc/self/cmdline".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return 0;
    }
    let mut got = 0usize;
    while let Some(rest) = buf.get_mut(got..).filter(|r| !r.is_empty()) {
        // SAFETY: `rest` is a writable buffer of `rest.len()` bytes that outlives the call.
        let r = unsafe { libc::read(fd, rest.as_mut_ptr().cast(), rest.len()) };
        match usize::try_from(r) {
            Ok(0) => break,
            Ok(n) => got = got.saturating_add(n).min(buf.len()),
            Err(_) if errno() == libc::EINTR => {}
            Err(_) => break,
        }
    }
    // SAFETY: `fd` is the descriptor opened above and not used afterwards.
    unsafe { libc::close(fd) };
    got
}

fn errno() -> c_int {
    // SAFETY: __errno_location returns this thread's errno slot, always valid to read.
    unsafe { *libc::__errno_location() }
}

fn set_errno(e: c_int) {
    // SAFETY: as in `errno`; writing this thread's errno is what libc functions do.
    unsafe { *libc::__errno_location() = e };
}

// ---------------------------------------------------------------------------------------------
// The real functions, found with dlsym(RTLD_NEXT) and cached in atomics (no pthread_once: a hook
// re-entered from a signal handler during the lookup just looks up again).

struct Real {
    name: &'static CStr,
    addr: AtomicUsize,
}

impl Real {
    const fn new(name: &'static CStr) -> Self {
        Real {
            name,
            addr: AtomicUsize::new(0),
        }
    }

    /// The address of the next definition of this symbol after ours, if any. Looked up again
    /// while missing, so a TLS library that is `dlopen`ed late is still found.
    fn addr(&self) -> Option<usize> {
        let a = self.addr.load(Ordering::Acquire);
        if a != 0 {
            return Some(a);
        }
        // SAFETY: the name is NUL-terminated; RTLD_NEXT is a valid pseudo-handle when called
        // from a shared object, which this code always is.
        let p = unsafe { libc::dlsym(libc::RTLD_NEXT, self.name.as_ptr()) };
        if p.is_null() {
            return None;
        }
        let a = p as usize;
        self.addr.store(a, Ordering::Release);
        Some(a)
    }
}

static REAL_WRITE: Real = Real::new(c"write");
static REAL_WRITEV: Real = Real::new(c"writev");
static REAL_SEND: Real = Real::new(c"send");
static REAL_SENDTO: Real = Real::new(c"sendto");
static REAL_SENDMSG: Real = Real::new(c"sendmsg");
static REAL_SSL_WRITE: Real = Real::new(c"SSL_write");
static REAL_SSL_WRITE_EX: Real = Real::new(c"SSL_write_ex");
static REAL_GNUTLS_SEND: Real = Real::new(c"gnutls_record_send");

type WriteFn = unsafe extern "C" fn(c_int, *const c_void, size_t) -> ssize_t;
type WritevFn = unsafe extern "C" fn(c_int, *const iovec, c_int) -> ssize_t;
type SendFn = unsafe extern "C" fn(c_int, *const c_void, size_t, c_int) -> ssize_t;
type SendtoFn = unsafe extern "C" fn(
    c_int,
    *const c_void,
    size_t,
    c_int,
    *const sockaddr,
    socklen_t,
) -> ssize_t;
type SendmsgFn = unsafe extern "C" fn(c_int, *const msghdr, c_int) -> ssize_t;
type SslWriteFn = unsafe extern "C" fn(*mut c_void, *const c_void, c_int) -> c_int;
type SslWriteExFn = unsafe extern "C" fn(*mut c_void, *const c_void, size_t, *mut size_t) -> c_int;
type GnutlsSendFn = unsafe extern "C" fn(*mut c_void, *const c_void, size_t) -> ssize_t;

macro_rules! real_fn {
    ($real:ident, $ty:ty) => {
        $real.addr().map(|a| {
            // SAFETY: `a` is what dlsym returned for this symbol name, the libc/OpenSSL/GnuTLS
            // function whose C prototype `$ty` spells out.
            unsafe { core::mem::transmute::<usize, $ty>(a) }
        })
    };
}

/// Runs when the library is loaded: reads the configuration and looks up the real functions
/// before the program's `main`, so hooks rarely have to do it.
extern "C" fn init() {
    let _ = recase();
    for r in [
        &REAL_WRITE,
        &REAL_WRITEV,
        &REAL_SEND,
        &REAL_SENDTO,
        &REAL_SENDMSG,
        &REAL_SSL_WRITE,
        &REAL_SSL_WRITE_EX,
        &REAL_GNUTLS_SEND,
    ] {
        let _ = r.addr();
    }
}

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

// ---------------------------------------------------------------------------------------------
// The per-stream table: a fixed number of slots, each taken with an atomic try-lock.

const SLOTS: usize = 32;
const KEY_FD: u64 = 1 << 60;
const KEY_SSL: u64 = 2 << 60;
const KEY_GNUTLS: u64 = 3 << 60;

struct Slot {
    busy: AtomicBool,
    /// 0 = free, else a `KEY_*` tag or'ed with the fd or session address.
    key: AtomicU64,
    /// Device and inode of the socket (fd keys), to notice a reused descriptor number.
    ident: UnsafeCell<(u64, u64)>,
    stream: UnsafeCell<Stream>,
}

// SAFETY: `ident` and `stream` are only accessed through a `Held`, which exists only after this
// slot's `busy` flag went false → true with Acquire, and gives it back with Release on drop; so
// at most one thread (or signal handler) touches them at a time.
unsafe impl Sync for Slot {}

impl Slot {
    const fn new() -> Self {
        Slot {
            busy: AtomicBool::new(false),
            key: AtomicU64::new(0),
            ident: UnsafeCell::new((0, 0)),
            stream: UnsafeCell::new(Stream::new()),
        }
    }

    fn try_lock(&'static self) -> Option<Held> {
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
            .then_some(Held { slot: self })
    }
}

static TABLE: [Slot; SLOTS] = [const { Slot::new() }; SLOTS];

/// Exclusive use of one slot.
struct Held {
    slot: &'static Slot,
}

impl Held {
    fn parts(&mut self) -> (&mut (u64, u64), &mut Stream) {
        // SAFETY: this `Held` owns the slot's lock (see `Slot`), and `&mut self` keeps these
        // references unique for as long as they live.
        unsafe { (&mut *self.slot.ident.get(), &mut *self.slot.stream.get()) }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let (_, stream) = self.parts();
        if stream.is_idle() {
            self.slot.key.store(0, Ordering::Release);
        }
        self.slot.busy.store(false, Ordering::Release);
    }
}

enum Lookup {
    Held(Held),
    /// Someone else is using this stream's slot right now.
    Busy,
    /// No slot (none needed, or the table is full).
    None,
}

fn known(key: u64) -> bool {
    TABLE.iter().any(|s| s.key.load(Ordering::Acquire) == key)
}

fn lookup(key: u64, ident: (u64, u64), create: bool) -> Lookup {
    for slot in &TABLE {
        if slot.key.load(Ordering::Acquire) != key {
            continue;
        }
        let Some(mut held) = slot.try_lock() else {
            return Lookup::Busy;
        };
        if slot.key.load(Ordering::Acquire) != key {
            continue;
        }
        let (id, stream) = held.parts();
        if *id != ident {
            // Same descriptor number, different socket: whatever was held belonged to a
            // connection that is gone.
            stream.reset();
            *id = ident;
        }
        return Lookup::Held(held);
    }
    if !create {
        return Lookup::None;
    }
    for slot in &TABLE {
        if slot.key.load(Ordering::Acquire) != 0 {
            continue;
        }
        let Some(mut held) = slot.try_lock() else {
            continue;
        };
        if slot
            .key
            .compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            continue;
        }
        let (id, stream) = held.parts();
        stream.reset();
        *id = ident;
        return Lookup::Held(held);
    }
    Lookup::None
}

fn to_isize(n: usize) -> isize {
    isize::try_from(n).unwrap_or(isize::MAX)
}

/// One intercepted call. `send` calls the real function with substitute bytes and returns what
/// it returned (> 0: bytes accepted); `pass` calls it with the caller's own arguments. The result
/// is what the hook returns: > 0 bytes of the caller's taken, else the real function's result
/// (its errno untouched: nothing after the real call makes a system call).
fn drive(
    key: u64,
    ident: (u64, u64),
    input: &[u8],
    send: &mut dyn FnMut(&[u8]) -> isize,
    pass: &mut dyn FnMut() -> isize,
) -> isize {
    let Some(how) = recase() else {
        return pass();
    };
    // Only a call that may start a request line needs a slot; the common case (bodies,
    // ciphertext, anything not starting with A-Z) never touches the table's locks.
    let candidate = matches!(input.first(), Some(b'A'..=b'Z'));
    let mut held = match lookup(key, ident, candidate) {
        Lookup::Held(h) => h,
        Lookup::Busy | Lookup::None => return pass(),
    };
    let (_, stream) = held.parts();
    loop {
        match stream.plan(input, how) {
            Plan::Pass => {
                let r = pass();
                if let Ok(n) = usize::try_from(r) {
                    stream.passed(input.get(..n).unwrap_or(input));
                }
                return r;
            }
            Plan::Accept(n) => return to_isize(n),
            Plan::Send(bytes) => {
                let r = send(bytes);
                let Ok(n) = usize::try_from(r) else {
                    return r;
                };
                if n == 0 {
                    return r;
                }
                match stream.sent(n) {
                    Sent::Done(n) => return to_isize(n),
                    Sent::Again => {}
                }
            }
        }
    }
}

/// `(st_dev, st_ino)` of `fd` if it is a socket.
fn socket_ident(fd: c_int) -> Option<(u64, u64)> {
    let mut st = core::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a full `struct stat` into the buffer on success; it is read only then.
    let st = unsafe {
        if libc::fstat(fd, st.as_mut_ptr()) != 0 {
            return None;
        }
        st.assume_init()
    };
    (st.st_mode & libc::S_IFMT == libc::S_IFSOCK).then_some((st.st_dev, st.st_ino))
}

/// [`drive`] for a file descriptor: only sockets, and `fstat` only when there is something to do.
fn drive_fd(
    fd: c_int,
    input: &[u8],
    send: &mut dyn FnMut(&[u8]) -> isize,
    pass: &mut dyn FnMut() -> isize,
) -> isize {
    let key = KEY_FD | u64::from(fd.unsigned_abs());
    if fd < 0 || (!matches!(input.first(), Some(b'A'..=b'Z')) && !known(key)) {
        return pass();
    }
    match socket_ident(fd) {
        Some(ident) => drive(key, ident, input, send, pass),
        None => pass(),
    }
}

/// The caller's buffer as a slice (empty for a null pointer or an impossible length).
///
/// # Safety
///
/// `buf` must point to `len` readable bytes that stay unchanged during the call (what the real
/// function requires of its caller anyway).
unsafe fn input<'a>(buf: *const c_void, len: usize) -> &'a [u8] {
    if buf.is_null() || len == 0 || isize::try_from(len).is_err() {
        return &[];
    }
    // SAFETY: guaranteed by this function's contract; null and oversized lengths excluded above.
    unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), len) }
}

/// The first non-empty element of an iovec array: re-casing works on it alone; a line that
/// continues in the next element is assembled over the short counts that follow.
///
/// # Safety
///
/// `iov` must point to `cnt` valid `iovec`s whose buffers are readable.
unsafe fn first_iov<'a>(iov: *const iovec, cnt: usize) -> &'a [u8] {
    if iov.is_null() || cnt == 0 || cnt > 1024 {
        return &[];
    }
    // SAFETY: per this function's contract.
    let v = unsafe { core::slice::from_raw_parts(iov, cnt) };
    v.iter()
        .find(|e| e.iov_len > 0)
        // SAFETY: per this function's contract each element describes readable memory.
        .map(|e| unsafe { input(e.iov_base.cast_const(), e.iov_len) })
        .unwrap_or_default()
}

fn enosys() -> isize {
    set_errno(libc::ENOSYS);
    -1
}

// ---------------------------------------------------------------------------------------------
// The interposed functions. Each one builds the caller's bytes as a slice, says how to call the
// real function with other bytes and with the caller's own arguments, and lets `drive` decide.

/// `write(2)`: wget's plain-HTTP requests.
///
/// # Safety
///
/// As `write(2)`: `buf` points to `count` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    let Some(real) = real_fn!(REAL_WRITE, WriteFn) else {
        return enosys();
    };
    // SAFETY: the caller passes what write(2) requires.
    let data = unsafe { input(buf, count) };
    drive_fd(
        fd,
        data,
        // SAFETY: `b` is a live slice; the real write reads `b.len()` bytes of it.
        &mut |b| unsafe { real(fd, b.as_ptr().cast(), b.len()) },
        // SAFETY: the caller's own arguments, unchanged.
        &mut || unsafe { real(fd, buf, count) },
    )
}

/// `writev(2)`.
///
/// # Safety
///
/// As `writev(2)`.
#[no_mangle]
pub unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    let (Some(real), Some(real_write)) = (
        real_fn!(REAL_WRITEV, WritevFn),
        real_fn!(REAL_WRITE, WriteFn),
    ) else {
        return enosys();
    };
    // SAFETY: the caller passes what writev(2) requires.
    let data = unsafe { first_iov(iov, usize::try_from(iovcnt).unwrap_or(0)) };
    drive_fd(
        fd,
        data,
        // SAFETY: `b` is a live slice; write reads `b.len()` bytes of it.
        &mut |b| unsafe { real_write(fd, b.as_ptr().cast(), b.len()) },
        // SAFETY: the caller's own arguments, unchanged.
        &mut || unsafe { real(fd, iov, iovcnt) },
    )
}

/// `send(2)`: curl's plain-HTTP requests.
///
/// # Safety
///
/// As `send(2)`.
#[no_mangle]
pub unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    let Some(real) = real_fn!(REAL_SEND, SendFn) else {
        return enosys();
    };
    // SAFETY: the caller passes what send(2) requires.
    let data = unsafe { input(buf, len) };
    drive_fd(
        fd,
        data,
        // SAFETY: `b` is a live slice; send reads `b.len()` bytes of it.
        &mut |b| unsafe { real(fd, b.as_ptr().cast(), b.len(), flags) },
        // SAFETY: the caller's own arguments, unchanged.
        &mut || unsafe { real(fd, buf, len, flags) },
    )
}

/// `sendto(2)`.
///
/// # Safety
///
/// As `sendto(2)`.
#[no_mangle]
pub unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addrlen: socklen_t,
) -> ssize_t {
    let Some(real) = real_fn!(REAL_SENDTO, SendtoFn) else {
        return enosys();
    };
    // SAFETY: the caller passes what sendto(2) requires.
    let data = unsafe { input(buf, len) };
    drive_fd(
        fd,
        data,
        // SAFETY: `b` is a live slice; the address arguments are the caller's, unchanged.
        &mut |b| unsafe { real(fd, b.as_ptr().cast(), b.len(), flags, addr, addrlen) },
        // SAFETY: the caller's own arguments, unchanged.
        &mut || unsafe { real(fd, buf, len, flags, addr, addrlen) },
    )
}

/// `sendmsg(2)`. A message with control data (e.g. passed descriptors) goes out unchanged.
///
/// # Safety
///
/// As `sendmsg(2)`.
#[no_mangle]
pub unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    let Some(real) = real_fn!(REAL_SENDMSG, SendmsgFn) else {
        return enosys();
    };
    // SAFETY: the caller passes a valid msghdr (or null, which we do not read).
    let Some(m) = (unsafe { msg.as_ref() }) else {
        // SAFETY: the caller's own arguments, unchanged.
        return unsafe { real(fd, msg, flags) };
    };
    let data = if m.msg_controllen == 0 {
        // SAFETY: msg_iov/msg_iovlen describe the caller's readable buffers.
        unsafe { first_iov(m.msg_iov, m.msg_iovlen) }
    } else {
        &[]
    };
    drive_fd(
        fd,
        data,
        &mut |b| {
            let mut v = iovec {
                iov_base: b.as_ptr().cast_mut().cast(),
                iov_len: b.len(),
            };
            let mut copy = *m;
            copy.msg_iov = &mut v;
            copy.msg_iovlen = 1;
            // SAFETY: `copy` is the caller's header with one iovec over a live slice that the
            // kernel only reads.
            unsafe { real(fd, &copy, flags) }
        },
        // SAFETY: the caller's own arguments, unchanged.
        &mut || unsafe { real(fd, msg, flags) },
    )
}

/// OpenSSL `SSL_write`: curl's HTTPS requests.
///
/// # Safety
///
/// As `SSL_write`: `ssl` is a live `SSL*`, `buf` points to `num` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn SSL_write(ssl: *mut c_void, buf: *const c_void, num: c_int) -> c_int {
    let Some(real) = real_fn!(REAL_SSL_WRITE, SslWriteFn) else {
        set_errno(libc::ENOSYS);
        return -1;
    };
    // SAFETY: the caller passes what SSL_write requires.
    let data = unsafe { input(buf, usize::try_from(num).unwrap_or(0)) };
    let r = drive(
        KEY_SSL | (ssl as u64 & 0x0fff_ffff_ffff_ffff),
        (0, 0),
        data,
        &mut |b| {
            // A substitute is at most a Stream's buffer long, far below c_int::MAX.
            let n = c_int::try_from(b.len()).unwrap_or(c_int::MAX);
            // SAFETY: `b` is a live slice inside a static Stream, so a retry after
            // SSL_ERROR_WANT_WRITE presents the same address and length again.
            to_isize_c(unsafe { real(ssl, b.as_ptr().cast(), n) })
        },
        // SAFETY: the caller's own arguments, unchanged.
        &mut || to_isize_c(unsafe { real(ssl, buf, num) }),
    );
    c_int::try_from(r).unwrap_or(-1)
}

fn to_isize_c(r: c_int) -> isize {
    isize::try_from(r).unwrap_or(-1)
}

/// OpenSSL `SSL_write_ex`.
///
/// # Safety
///
/// As `SSL_write_ex`.
#[no_mangle]
pub unsafe extern "C" fn SSL_write_ex(
    ssl: *mut c_void,
    buf: *const c_void,
    num: size_t,
    written: *mut size_t,
) -> c_int {
    let Some(real) = real_fn!(REAL_SSL_WRITE_EX, SslWriteExFn) else {
        set_errno(libc::ENOSYS);
        return 0;
    };
    if written.is_null() {
        // SAFETY: the caller's own arguments, unchanged.
        return unsafe { real(ssl, buf, num, written) };
    }
    // SAFETY: the caller passes what SSL_write_ex requires.
    let data = unsafe { input(buf, num) };
    let failed = core::cell::Cell::new(0 as c_int);
    let r = drive(
        KEY_SSL | (ssl as u64 & 0x0fff_ffff_ffff_ffff),
        (0, 0),
        data,
        &mut |b| {
            let mut w: size_t = 0;
            // SAFETY: `b` is a live slice in a static Stream (stable address for retries); `w`
            // is a local the call writes.
            let ok = unsafe { real(ssl, b.as_ptr().cast(), b.len(), &mut w) };
            if ok == 1 {
                to_isize(w)
            } else {
                failed.set(ok);
                0
            }
        },
        &mut || {
            let mut w: size_t = 0;
            // SAFETY: the caller's own arguments, with our local for the count.
            let ok = unsafe { real(ssl, buf, num, &mut w) };
            if ok == 1 {
                to_isize(w)
            } else {
                failed.set(ok);
                0
            }
        },
    );
    match usize::try_from(r) {
        Ok(n) if n > 0 => {
            // SAFETY: checked non-null above; the caller provides a writable size_t.
            unsafe { *written = n };
            1
        }
        _ => failed.get(),
    }
}

/// GnuTLS `gnutls_record_send`: wget's HTTPS requests.
///
/// # Safety
///
/// As `gnutls_record_send`.
#[no_mangle]
pub unsafe extern "C" fn gnutls_record_send(
    session: *mut c_void,
    data: *const c_void,
    size: size_t,
) -> ssize_t {
    let Some(real) = real_fn!(REAL_GNUTLS_SEND, GnutlsSendFn) else {
        set_errno(libc::ENOSYS);
        return -1;
    };
    // SAFETY: the caller passes what gnutls_record_send requires.
    let bytes = unsafe { input(data, size) };
    drive(
        KEY_GNUTLS | (session as u64 & 0x0fff_ffff_ffff_ffff),
        (0, 0),
        bytes,
        // SAFETY: `b` is a live slice; after GNUTLS_E_AGAIN the same bytes are offered again.
        &mut |b| unsafe { real(session, b.as_ptr().cast(), b.len()) },
        // SAFETY: the caller's own arguments, unchanged.
        &mut || unsafe { real(session, data, size) },
    )
}
