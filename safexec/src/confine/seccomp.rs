//! The job's seccomp filter: a deny list that makes kernel interfaces a download tool never
//! needs fail with EPERM, everything else allowed.
//!
//! Two BPF programs are installed, because seccompiler gives one program a single "match"
//! action: the deny list (EPERM), and a one-rule program that answers `clone3` with ENOSYS.
//! When several filters apply the kernel takes the strictest answer, so the two compose.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompRule, TargetArch,
};

/// Compiled BPF programs, ready to install. Compiling allocates; installing does not.
#[derive(Debug, Clone)]
pub struct SeccompFilter {
    programs: Vec<BpfProgram>,
}

/// System calls denied outright (EPERM), common to x86_64 and aarch64. Grouped by why.
const DENIED_COMMON: &[(&str, libc::c_long)] = &[
    // Reading or writing another process's memory or descriptors (other tenants' jobs run as
    // the same user; Yama is not a given).
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("process_madvise", libc::SYS_process_madvise),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("kcmp", libc::SYS_kcmp),
    // Large kernel attack surface, historically rich in privilege escalations.
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    ("fanotify_init", libc::SYS_fanotify_init),
    // The kernel keyring is shared per user and not namespaced.
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    // Namespaces and mounts: unprivileged user namespaces turn these into root-in-namespace
    // attack surface.
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("chroot", libc::SYS_chroot),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    // File handles bypass path-based permission checks on the way to an inode.
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    // Kernel modules and kexec.
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    // Host administration: never a job's business.
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("reboot", libc::SYS_reboot),
    ("acct", libc::SYS_acct),
    ("quotactl", libc::SYS_quotactl),
    ("quotactl_fd", libc::SYS_quotactl_fd),
    ("syslog", libc::SYS_syslog),
    ("vhangup", libc::SYS_vhangup),
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("adjtimex", libc::SYS_adjtimex),
    ("sethostname", libc::SYS_sethostname),
    ("setdomainname", libc::SYS_setdomainname),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("nfsservctl", libc::SYS_nfsservctl),
];

/// x86_64-only system calls: port I/O, LDT games and obsolete module calls.
#[cfg(target_arch = "x86_64")]
const DENIED_ARCH: &[(&str, libc::c_long)] = &[
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
    ("modify_ldt", libc::SYS_modify_ldt),
    ("uselib", libc::SYS_uselib),
    ("_sysctl", libc::SYS__sysctl),
];

/// aarch64 has no extra entries: it never had the legacy calls above.
#[cfg(target_arch = "aarch64")]
const DENIED_ARCH: &[(&str, libc::c_long)] = &[];

/// Every namespace flag `clone` accepts. `clone` is how threads and fork are made, so it cannot
/// be denied; only a call that asks for a new namespace is. (`CLONE_NEWTIME` has no `clone`
/// bit: it shares 0x80 with the exit-signal field and exists only for `clone3`/`unshare`.)
const CLONE_NAMESPACE_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
];

/// `personality` values ordinary programs use (query, Linux, 32-bit uname, both): the same set
/// container runtimes allow. Anything else (e.g. ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC) weakens
/// the exploit mitigations of whatever the job executes next.
const PERSONALITY_ALLOWED: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Terminal ioctls that push input into, or take over, the caller's terminal (the classic
/// TIOCSTI escape from `su`/`sudo` sandboxes) when the job inherits a tty on fd 0-2.
// The request constants are `c_ulong` on glibc and `c_int` on musl, hence the casts.
#[allow(clippy::unnecessary_cast)]
const DENIED_IOCTLS: &[u64] = &[libc::TIOCSTI as u64, libc::TIOCLINUX as u64];

/// x32 system calls are x86_64 calls with this bit set in the number and the same audit arch;
/// a deny list keyed on numbers would miss them, so the filter answers them all with EPERM.
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

fn arch() -> Result<TargetArch, String> {
    TargetArch::try_from(std::env::consts::ARCH)
        .map_err(|_| format!("no seccomp tables for {}", std::env::consts::ARCH))
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, String> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
        .map_err(|e| format!("seccomp condition: {e}"))
}

fn rule(conds: Vec<SeccompCondition>) -> Result<SeccompRule, String> {
    SeccompRule::new(conds).map_err(|e| format!("seccomp rule: {e}"))
}

/// The deny-list rules: syscall number → rules (empty = always).
fn deny_rules() -> Result<BTreeMap<i64, Vec<SeccompRule>>, String> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = DENIED_COMMON
        .iter()
        .chain(DENIED_ARCH)
        .map(|&(_, nr)| (nr, Vec::new()))
        .collect();
    let mut clone = Vec::new();
    for &flag in CLONE_NAMESPACE_FLAGS {
        clone.push(rule(vec![cond(0, SeccompCmpOp::MaskedEq(flag), flag)?])?);
    }
    rules.insert(libc::SYS_clone, clone);
    let not_allowed = PERSONALITY_ALLOWED
        .iter()
        .map(|&v| cond(0, SeccompCmpOp::Ne, v))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_personality, vec![rule(not_allowed)?]);
    let mut ioctl = Vec::new();
    for &request in DENIED_IOCTLS {
        ioctl.push(rule(vec![cond(1, SeccompCmpOp::Eq, request)?])?);
    }
    rules.insert(libc::SYS_ioctl, ioctl);
    Ok(rules)
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    on_match: SeccompAction,
) -> Result<BpfProgram, String> {
    let filter = seccompiler::SeccompFilter::new(rules, SeccompAction::Allow, on_match, arch()?)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    let prog: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| format!("seccomp compile: {e}"))?;
    Ok(with_x32_guard(prog))
}

/// Inserts the x32 check right after seccompiler's arch check (which is the first three
/// instructions: load arch, jump over the kill if it matches, kill). BPF jumps are relative and
/// only go forward, so code inserted there shifts nothing that jumps across it.
#[cfg(target_arch = "x86_64")]
fn with_x32_guard(mut prog: BpfProgram) -> BpfProgram {
    const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD (0) | BPF_W (0) | BPF_ABS (0x20)
    const BPF_JMP_JGE_K: u16 = 0x35; // BPF_JMP (5) | BPF_JGE (0x30) | BPF_K (0)
    const BPF_RET_K: u16 = 0x06;
    let guard = [
        sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        sock_filter {
            code: BPF_JMP_JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
    ];
    let at = 3.min(prog.len());
    prog.splice(at..at, guard);
    prog
}

#[cfg(not(target_arch = "x86_64"))]
fn with_x32_guard(prog: BpfProgram) -> BpfProgram {
    prog
}

/// Builds the job's seccomp programs. Call as root, early: it allocates, and the steps between
/// the privilege drop and exec should not.
pub fn compile_seccomp() -> Result<SeccompFilter, String> {
    let deny = compile(deny_rules()?, SeccompAction::Errno(libc::EPERM as u32))?;
    // clone3 passes its flags in memory that BPF cannot read, so namespace flags there cannot
    // be filtered. ENOSYS (not EPERM) makes glibc and Rust's std fall back to clone, whose
    // flags the deny list does check.
    let clone3: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, Vec::new())].into();
    let nosys = compile(clone3, SeccompAction::Errno(libc::ENOSYS as u32))?;
    Ok(SeccompFilter {
        programs: vec![deny, nosys],
    })
}

/// Installs the programs on the calling thread. Call last before exec, after NO_NEW_PRIVS
/// (seccompiler sets it again, which is harmless): everything after this runs filtered.
pub fn install_seccomp(filter: &SeccompFilter) -> Result<(), String> {
    for prog in &filter.programs {
        seccompiler::apply_filter(prog)
            .map_err(|e| format!("cannot install seccomp filter: {e}"))?;
    }
    Ok(())
}

/// The names of the always-denied system calls (for documentation and tests).
pub fn denied_syscall_names() -> impl Iterator<Item = &'static str> {
    DENIED_COMMON
        .iter()
        .chain(DENIED_ARCH)
        .map(|&(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_compiles_for_this_arch() {
        let f = compile_seccomp().unwrap();
        assert_eq!(f.programs.len(), 2);
        assert!(f.programs.iter().all(|p| p.len() < 4096));
    }

    #[test]
    fn deny_list_has_the_issue_syscalls() {
        let names: Vec<_> = denied_syscall_names().collect();
        for must in [
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "bpf",
            "perf_event_open",
            "keyctl",
            "add_key",
            "request_key",
            "userfaultfd",
            "mount",
            "umount2",
            "pivot_root",
            "unshare",
            "setns",
            "init_module",
            "finit_module",
            "delete_module",
            "kexec_load",
            "kexec_file_load",
            "open_by_handle_at",
        ] {
            assert!(names.contains(&must), "{must}");
        }
        let mut nrs: Vec<_> = DENIED_COMMON
            .iter()
            .chain(DENIED_ARCH)
            .map(|e| e.1)
            .collect();
        let before = nrs.len();
        nrs.sort_unstable();
        nrs.dedup();
        assert_eq!(nrs.len(), before, "duplicate syscall numbers");
    }

    #[test]
    fn thread_creation_calls_stay_allowed() {
        let rules = deny_rules().unwrap();
        // clone is only filtered by namespace flags, never outright; clone3 is answered by the
        // separate ENOSYS program so the C library falls back to clone.
        assert_eq!(rules[&libc::SYS_clone].len(), CLONE_NAMESPACE_FLAGS.len());
        assert!(!rules.contains_key(&libc::SYS_clone3));
        assert!(!rules.contains_key(&libc::SYS_execve));
        #[cfg(target_arch = "x86_64")]
        for nr in [libc::SYS_fork, libc::SYS_vfork] {
            assert!(!rules.contains_key(&nr));
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_guard_follows_the_arch_check() {
        let prog = compile(BTreeMap::new(), SeccompAction::Errno(1)).unwrap();
        // arch load, arch jump, kill, then the guard.
        assert_eq!(prog[1].jt, 1);
        assert_eq!(prog[2].k, libc::SECCOMP_RET_KILL_PROCESS);
        assert_eq!(prog[3].code, 0x20);
        assert_eq!(prog[4].k, X32_SYSCALL_BIT);
        assert_eq!(prog[5].k, libc::SECCOMP_RET_ERRNO | libc::EPERM as u32);
    }

    /// A seccomp-BPF interpreter for the instructions seccompiler emits, so the compiled
    /// programs' answers are checked here without installing them.
    fn run(prog: &[sock_filter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
        let mut data = Vec::with_capacity(64);
        data.extend_from_slice(&nr.to_le_bytes());
        data.extend_from_slice(&arch.to_le_bytes());
        data.extend_from_slice(&0u64.to_le_bytes());
        for a in args {
            data.extend_from_slice(&a.to_le_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let ins = &prog[pc];
            pc += 1;
            let k = ins.k;
            match ins.code {
                0x20 => {
                    let o = k as usize;
                    acc = u32::from_le_bytes(data[o..o + 4].try_into().unwrap());
                }
                0x54 => acc &= k,
                0x05 => pc += k as usize,
                0x15 | 0x25 | 0x35 => {
                    let taken = match ins.code {
                        0x15 => acc == k,
                        0x25 => acc > k,
                        _ => acc >= k,
                    };
                    pc += usize::from(if taken { ins.jt } else { ins.jf });
                }
                0x06 => return k,
                other => panic!("instruction {other:#x} not modelled"),
            }
        }
    }

    /// The kernel's combination of several filters: the most restrictive action wins, compared
    /// as signed values of the action bits (so KILL_PROCESS beats everything).
    fn decide(f: &SeccompFilter, arch: u32, nr: i64, args: [u64; 6]) -> u32 {
        f.programs
            .iter()
            .map(|p| run(p, arch, nr as u32, args))
            .min_by_key(|r| (r & 0xffff_0000) as i32)
            .unwrap()
    }

    #[cfg(target_arch = "x86_64")]
    const ARCH: u32 = 0xc000_003e;
    #[cfg(target_arch = "aarch64")]
    const ARCH: u32 = 0xc000_00b7;
    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;

    fn call(nr: i64, a0: u64, a1: u64) -> u32 {
        decide(&compile_seccomp().unwrap(), ARCH, nr, [a0, a1, 0, 0, 0, 0])
    }

    #[test]
    fn compiled_filter_answers_as_designed() {
        for &(name, nr) in DENIED_COMMON.iter().chain(DENIED_ARCH) {
            assert_eq!(call(nr, 0, 0), EPERM, "{name}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_mmap,
            libc::SYS_futex,
            libc::SYS_execve,
            libc::SYS_socket,
            libc::SYS_connect,
            libc::SYS_seccomp,
            libc::SYS_prctl,
        ] {
            assert_eq!(call(nr, 0, 0), ALLOW, "{nr}");
        }
        // Threads (glibc's pthread_create flags) and fork stay allowed; namespaces do not.
        assert_eq!(call(libc::SYS_clone, 0x003d_0f00, 0), ALLOW);
        assert_eq!(call(libc::SYS_clone, libc::SIGCHLD as u64, 0), ALLOW);
        for &flag in CLONE_NAMESPACE_FLAGS {
            assert_eq!(
                call(libc::SYS_clone, flag | libc::SIGCHLD as u64, 0),
                EPERM,
                "{flag:#x}"
            );
        }
        assert_eq!(
            call(libc::SYS_clone3, 0, 0),
            libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32
        );
        for ok in PERSONALITY_ALLOWED {
            assert_eq!(call(libc::SYS_personality, *ok, 0), ALLOW, "{ok:#x}");
        }
        assert_eq!(
            call(libc::SYS_personality, 0x0040000, 0),
            EPERM,
            "ADDR_NO_RANDOMIZE"
        );
        assert_eq!(call(libc::SYS_ioctl, 0, DENIED_IOCTLS[0]), EPERM);
        assert_eq!(call(libc::SYS_ioctl, 0, DENIED_IOCTLS[1]), EPERM);
        assert_eq!(call(libc::SYS_ioctl, 0, 0x5401), ALLOW, "TCGETS");
    }

    #[test]
    fn foreign_arch_is_killed() {
        let f = compile_seccomp().unwrap();
        // AUDIT_ARCH_I386: the int 0x80 ABI, where the numbers mean different calls.
        assert_eq!(
            decide(&f, 0x4000_0003, libc::SYS_read, [0; 6]),
            libc::SECCOMP_RET_KILL_PROCESS
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_calls_are_refused() {
        let f = compile_seccomp().unwrap();
        let x32 = |nr: i64| nr | i64::from(X32_SYSCALL_BIT);
        assert_eq!(decide(&f, ARCH, x32(libc::SYS_unshare), [0; 6]), EPERM);
        assert_eq!(decide(&f, ARCH, x32(libc::SYS_read), [0; 6]), EPERM);
    }
}
