//! Capability sets and securebits: everything a job could use to regain privilege is emptied
//! and locked while the process is still root.
#![forbid(unsafe_code)]

use std::io;

use crate::sys;

/// Capability operations, behind a trait so the order of the privileged steps is unit-tested
/// without root (the real implementation is [`RealCaps`]).
pub(crate) trait CapSys {
    /// Highest capability number the running kernel knows (`/proc/sys/kernel/cap_last_cap`).
    fn last_cap(&mut self) -> io::Result<u32>;
    /// `PR_CAP_AMBIENT_CLEAR_ALL`.
    fn clear_ambient(&mut self) -> io::Result<()>;
    /// capset with an empty inheritable set.
    fn clear_inheritable(&mut self) -> io::Result<()>;
    /// `PR_GET_SECUREBITS`.
    fn securebits(&mut self) -> io::Result<u32>;
    /// `PR_SET_SECUREBITS`.
    fn set_securebits(&mut self, bits: u32) -> io::Result<()>;
    /// `PR_CAPBSET_DROP`.
    fn bounding_drop(&mut self, cap: u32) -> io::Result<()>;
    /// `PR_CAPBSET_READ`.
    fn bounding_has(&mut self, cap: u32) -> io::Result<bool>;
    /// All five sets as bit masks.
    fn masks(&mut self) -> io::Result<CapMasks>;
}

/// The five capability sets as bit masks (bit n = capability n).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CapMasks {
    pub inheritable: u64,
    pub permitted: u64,
    pub effective: u64,
    pub bounding: u64,
    pub ambient: u64,
}

impl CapMasks {
    /// Parses the `Cap*:` lines of `/proc/<pid>/status`.
    pub(crate) fn from_status(status: &str) -> Option<CapMasks> {
        let field = |name: &str| {
            status.lines().find_map(|l| {
                let hex = l.strip_prefix(name)?.strip_prefix(':')?.trim();
                u64::from_str_radix(hex, 16).ok()
            })
        };
        Some(CapMasks {
            inheritable: field("CapInh")?,
            permitted: field("CapPrm")?,
            effective: field("CapEff")?,
            bounding: field("CapBnd")?,
            ambient: field("CapAmb")?,
        })
    }
}

/// The capability operations of the real kernel: the `caps` crate for capget/capset and the
/// ambient set, `crate::sys` for the prctl calls it does not wrap.
pub(crate) struct RealCaps;

impl CapSys for RealCaps {
    fn last_cap(&mut self) -> io::Result<u32> {
        let text = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")?;
        text.trim()
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad cap_last_cap"))
    }

    fn clear_ambient(&mut self) -> io::Result<()> {
        caps::clear(None, caps::CapSet::Ambient).map_err(io::Error::other)
    }

    fn clear_inheritable(&mut self) -> io::Result<()> {
        caps::clear(None, caps::CapSet::Inheritable).map_err(io::Error::other)
    }

    fn securebits(&mut self) -> io::Result<u32> {
        sys::securebits()
    }

    fn set_securebits(&mut self, bits: u32) -> io::Result<()> {
        sys::set_securebits(bits)
    }

    fn bounding_drop(&mut self, cap: u32) -> io::Result<()> {
        sys::capbset_drop(cap)
    }

    fn bounding_has(&mut self, cap: u32) -> io::Result<bool> {
        sys::capbset_has(cap)
    }

    fn masks(&mut self) -> io::Result<CapMasks> {
        // capget through the caps crate for the sets it knows, and /proc/self/status for every
        // bit the kernel has (the crate cannot name capabilities newer than itself).
        let mut m = CapMasks::from_status(&std::fs::read_to_string("/proc/self/status")?)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no Cap lines in status"))?;
        for (set, mask) in [
            (caps::CapSet::Permitted, &mut m.permitted),
            (caps::CapSet::Effective, &mut m.effective),
            (caps::CapSet::Inheritable, &mut m.inheritable),
        ] {
            for cap in caps::read(None, set).map_err(io::Error::other)? {
                *mask |= cap.bitmask();
            }
        }
        Ok(m)
    }
}

// securebits (include/uapi/linux/securebits.h): bit 2n is a flag, bit 2n+1 locks it.
const NOROOT: u32 = 1 << 0;
const NOROOT_LOCKED: u32 = 1 << 1;
const NO_SETUID_FIXUP_LOCKED: u32 = 1 << 3;
const KEEP_CAPS_LOCKED: u32 = 1 << 5;
const NO_CAP_AMBIENT_RAISE: u32 = 1 << 6;
const NO_CAP_AMBIENT_RAISE_LOCKED: u32 = 1 << 7;

/// The securebits every job carries, each locked so neither the job nor anything it executes
/// can change them (securebits survive fork and execve).
/// - NOROOT on: uid 0 gains no capabilities at execve, so a root-owned setuid file run by the
///   job grants nothing even if NO_NEW_PRIVS were somehow absent.
/// - NO_SETUID_FIXUP locked *off*: the kernel must keep clearing the permitted and effective
///   sets when the uid changes away from 0. Setting this flag (as "pure capability mode" does)
///   would let the dropped process keep root's capabilities until exec; that fixup is exactly
///   what empties them at our setresuid, and `verify_empty` checks that it did.
/// - KEEP_CAPS locked off: `PR_SET_KEEPCAPS` can no longer keep capabilities across a uid change.
/// - NO_CAP_AMBIENT_RAISE on: the (already empty) ambient set can never be raised again.
pub(crate) const JOB_SECUREBITS: u32 = NOROOT
    | NOROOT_LOCKED
    | NO_SETUID_FIXUP_LOCKED
    | KEEP_CAPS_LOCKED
    | NO_CAP_AMBIENT_RAISE
    | NO_CAP_AMBIENT_RAISE_LOCKED;

const NO_SETUID_FIXUP: u32 = 1 << 2;
const KEEP_CAPS: u32 = 1 << 4;

/// The securebits to set, given the ones the process has: [`JOB_SECUREBITS`] added to them,
/// with the two flags that keep capabilities across a uid change cleared.
pub(crate) fn job_securebits(old: u32) -> u32 {
    (old | JOB_SECUREBITS) & !(NO_SETUID_FIXUP | KEEP_CAPS)
}

/// Whether a securebits word carries the job's locks.
fn has_job_securebits(bits: u32) -> bool {
    bits & JOB_SECUREBITS == JOB_SECUREBITS && bits & (NO_SETUID_FIXUP | KEEP_CAPS) == 0
}

/// Empties the ambient, bounding and inheritable sets and locks the securebits. Runs as root,
/// before the uid change; the permitted and effective sets are emptied by that change itself.
pub(crate) fn drop_all(sys: &mut dyn CapSys) -> Result<(), String> {
    let last = sys
        .last_cap()
        .map_err(|e| format!("cannot read cap_last_cap: {e}"))?;
    if last > 63 {
        // The status masks and capget's two 32-bit words end at 63; a kernel with more would
        // need a new interface, and guessing would leave capabilities unverified.
        return Err(format!(
            "kernel reports {last} capabilities, more than safexec can verify"
        ));
    }

    // Ambient first: ambient capabilities are added to the permitted set at every execve of an
    // unprivileged file, so they are the one set that could carry privilege into the tool.
    sys.clear_ambient()
        .map_err(|e| format!("cannot clear the ambient capabilities: {e}"))?;

    // Securebits next. PR_SET_SECUREBITS needs CAP_SETPCAP in the *effective* set
    // (security/commoncap.c, cap_task_prctl). Dropping the bounding set below does not touch
    // the effective set, so either order works today; doing the lock first means it can never
    // come to depend on a capability that a later step removed.
    // Bits already set survive execve, so the caller may have set some (Linux 6.14 lets any
    // process set SECBIT_EXEC_RESTRICT_FILE and SECBIT_EXEC_DENY_INTERACTIVE): they are kept,
    // since a caller may only make things stricter, except the two that would keep
    // capabilities across the uid change; if those are locked on, the set fails and so do we.
    let old = sys
        .securebits()
        .map_err(|e| format!("cannot read the securebits: {e}"))?;
    let wanted = job_securebits(old);
    sys.set_securebits(wanted)
        .map_err(|e| format!("cannot lock the securebits: {e}"))?;
    let bits = sys
        .securebits()
        .map_err(|e| format!("cannot read the securebits: {e}"))?;
    if bits != wanted {
        return Err(format!(
            "securebits read back as {bits:#x}, expected {wanted:#x}"
        ));
    }

    // The bounding set caps what any later execve can grant (file capabilities, setuid root).
    // PR_CAPBSET_DROP also needs CAP_SETPCAP, which is why this runs before the uid change.
    // Every number up to the kernel's last one is dropped, including capabilities newer than
    // the caps crate knows.
    for cap in 0..=last {
        sys.bounding_drop(cap)
            .map_err(|e| format!("cannot drop capability {cap} from the bounding set: {e}"))?;
    }

    // Inheritable last: lowering it needs no privilege, and with an empty bounding set it can
    // never be raised again (capset only adds inheritable bits that are in the bounding set).
    sys.clear_inheritable()
        .map_err(|e| format!("cannot clear the inheritable capabilities: {e}"))?;

    for cap in 0..=last {
        if sys
            .bounding_has(cap)
            .map_err(|e| format!("cannot read the bounding set: {e}"))?
        {
            return Err(format!("capability {cap} is still in the bounding set"));
        }
    }
    let m = sys
        .masks()
        .map_err(|e| format!("cannot read the capability sets: {e}"))?;
    if m.bounding != 0 || m.ambient != 0 || m.inheritable != 0 {
        return Err(format!(
            "capabilities left after the drop: bounding {:#x} ambient {:#x} inheritable {:#x}",
            m.bounding, m.ambient, m.inheritable
        ));
    }
    Ok(())
}

/// Checks, after the uid change, that all five sets are empty and the securebits still locked.
pub(crate) fn verify_empty(sys: &mut dyn CapSys) -> Result<(), String> {
    let m = sys
        .masks()
        .map_err(|e| format!("cannot read the capability sets: {e}"))?;
    if m != CapMasks::default() {
        return Err(format!(
            "capabilities left after the privilege drop: {m:x?}"
        ));
    }
    let bits = sys
        .securebits()
        .map_err(|e| format!("cannot read the securebits: {e}"))?;
    if !has_job_securebits(bits) {
        return Err(format!(
            "securebits are {bits:#x}, expected at least {JOB_SECUREBITS:#x}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake kernel that records every call and applies the kernel's rules that matter here.
    struct Fake {
        calls: Vec<String>,
        last: u32,
        masks: CapMasks,
        bits: u32,
        /// Whether CAP_SETPCAP is effective (true while "root").
        setpcap: bool,
        fail: Option<&'static str>,
    }

    impl Fake {
        fn root(last: u32) -> Fake {
            let all = (1u64 << (last + 1)) - 1;
            Fake {
                calls: Vec::new(),
                last,
                masks: CapMasks {
                    inheritable: 0b100,
                    permitted: all,
                    effective: all,
                    bounding: all,
                    ambient: 0b100,
                },
                bits: 0,
                setpcap: true,
                fail: None,
            }
        }
        fn step(&mut self, name: String) -> io::Result<()> {
            let failing = self.fail.is_some_and(|f| name.starts_with(f));
            self.calls.push(name);
            if failing {
                Err(io::Error::from_raw_os_error(libc::EPERM))
            } else {
                Ok(())
            }
        }
    }

    impl CapSys for Fake {
        fn last_cap(&mut self) -> io::Result<u32> {
            self.step("last_cap".into())?;
            Ok(self.last)
        }
        fn clear_ambient(&mut self) -> io::Result<()> {
            self.step("clear_ambient".into())?;
            self.masks.ambient = 0;
            Ok(())
        }
        fn clear_inheritable(&mut self) -> io::Result<()> {
            self.step("clear_inheritable".into())?;
            self.masks.inheritable = 0;
            self.masks.ambient = 0;
            Ok(())
        }
        fn securebits(&mut self) -> io::Result<u32> {
            self.step("securebits".into())?;
            Ok(self.bits)
        }
        fn set_securebits(&mut self, bits: u32) -> io::Result<()> {
            self.step(format!("set_securebits {bits:#x}"))?;
            if !self.setpcap {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            self.bits = bits;
            Ok(())
        }
        fn bounding_drop(&mut self, cap: u32) -> io::Result<()> {
            self.step(format!("bounding_drop {cap}"))?;
            if !self.setpcap {
                return Err(io::Error::from_raw_os_error(libc::EPERM));
            }
            self.masks.bounding &= !(1 << cap);
            Ok(())
        }
        fn bounding_has(&mut self, cap: u32) -> io::Result<bool> {
            Ok(self.masks.bounding & (1 << cap) != 0)
        }
        fn masks(&mut self) -> io::Result<CapMasks> {
            self.step("masks".into())?;
            Ok(self.masks)
        }
    }

    #[test]
    fn drop_runs_the_steps_in_order() {
        let mut fake = Fake::root(40);
        drop_all(&mut fake).unwrap();
        let mut want = vec![
            "last_cap".to_string(),
            "clear_ambient".into(),
            "securebits".into(),
            "set_securebits 0xeb".into(),
            "securebits".into(),
        ];
        want.extend((0..=40).map(|c| format!("bounding_drop {c}")));
        want.push("clear_inheritable".into());
        want.push("masks".into());
        assert_eq!(fake.calls, want);
        assert_eq!(fake.masks.bounding, 0);
        assert_eq!(fake.bits, JOB_SECUREBITS);
    }

    #[test]
    fn securebits_lock_the_fixup_off() {
        assert_eq!(
            JOB_SECUREBITS & (1 << 2),
            0,
            "NO_SETUID_FIXUP must stay clear"
        );
        assert_ne!(JOB_SECUREBITS & (1 << 3), 0, "and be locked");
        assert_eq!(
            JOB_SECUREBITS,
            libc::SECBIT_NOROOT as u32
                | libc::SECBIT_NOROOT_LOCKED as u32
                | libc::SECBIT_NO_SETUID_FIXUP_LOCKED as u32
                | libc::SECBIT_KEEP_CAPS_LOCKED as u32
                | libc::SECBIT_NO_CAP_AMBIENT_RAISE as u32
                | libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED as u32
        );
    }

    #[test]
    fn each_failing_step_is_fatal_and_stops() {
        for step in [
            "last_cap",
            "clear_ambient",
            "set_securebits",
            "bounding_drop 7",
            "clear_inheritable",
            "masks",
        ] {
            let mut fake = Fake::root(40);
            fake.fail = Some(step);
            let e = drop_all(&mut fake).unwrap_err();
            assert!(!e.is_empty());
            assert!(
                fake.calls.last().unwrap().starts_with(step),
                "{step}: {:?}",
                fake.calls
            );
        }
    }

    #[test]
    fn without_setpcap_the_drop_fails() {
        let mut fake = Fake::root(40);
        fake.setpcap = false;
        assert!(drop_all(&mut fake).unwrap_err().contains("securebits"));
    }

    #[test]
    fn securebits_readback_mismatch_is_fatal() {
        struct Sticky(Fake);
        impl CapSys for Sticky {
            fn last_cap(&mut self) -> io::Result<u32> {
                self.0.last_cap()
            }
            fn clear_ambient(&mut self) -> io::Result<()> {
                self.0.clear_ambient()
            }
            fn clear_inheritable(&mut self) -> io::Result<()> {
                self.0.clear_inheritable()
            }
            fn securebits(&mut self) -> io::Result<u32> {
                Ok(0x2f)
            }
            fn set_securebits(&mut self, b: u32) -> io::Result<()> {
                self.0.set_securebits(b)
            }
            fn bounding_drop(&mut self, c: u32) -> io::Result<()> {
                self.0.bounding_drop(c)
            }
            fn bounding_has(&mut self, c: u32) -> io::Result<bool> {
                self.0.bounding_has(c)
            }
            fn masks(&mut self) -> io::Result<CapMasks> {
                self.0.masks()
            }
        }
        let e = drop_all(&mut Sticky(Fake::root(40))).unwrap_err();
        assert!(e.contains("read back as 0x2f"), "{e}");
    }

    #[test]
    fn too_many_capabilities_are_refused() {
        assert!(drop_all(&mut Fake::root(40).with_last(64)).is_err());
    }

    impl Fake {
        fn with_last(mut self, last: u32) -> Fake {
            self.last = last;
            self
        }
    }

    #[test]
    fn verify_after_the_uid_change() {
        let mut fake = Fake::root(40);
        drop_all(&mut fake).unwrap();
        // Still "root": permitted and effective are full, verification must fail.
        assert!(verify_empty(&mut fake).unwrap_err().contains("left after"));
        // The kernel's setuid fixup empties them.
        fake.masks.permitted = 0;
        fake.masks.effective = 0;
        verify_empty(&mut fake).unwrap();
        fake.bits = 0;
        assert!(verify_empty(&mut fake).unwrap_err().contains("securebits"));
    }

    #[test]
    fn status_lines_parse() {
        let status = "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\n\
                      CapEff:\t0000000000000001\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n";
        let m = CapMasks::from_status(status).unwrap();
        assert_eq!(m.permitted, 0x1fffeffffff);
        assert_eq!(m.effective, 1);
        assert_eq!(m.ambient, 0);
        assert!(CapMasks::from_status("Name: x\n").is_none());
    }

    #[test]
    fn caller_securebits_are_kept_except_the_capability_keepers() {
        // EXEC_RESTRICT_FILE (bit 8) and its lock (bit 9) survive; NO_SETUID_FIXUP and
        // KEEP_CAPS are cleared.
        assert_eq!(job_securebits(0), JOB_SECUREBITS);
        assert_eq!(job_securebits(0x300), JOB_SECUREBITS | 0x300);
        assert_eq!(job_securebits(0x14), JOB_SECUREBITS);
        let mut fake = Fake::root(40);
        fake.bits = 0x100;
        drop_all(&mut fake).unwrap();
        assert_eq!(fake.bits, JOB_SECUREBITS | 0x100);
        fake.masks.permitted = 0;
        fake.masks.effective = 0;
        verify_empty(&mut fake).unwrap();
        fake.bits |= NO_SETUID_FIXUP;
        assert!(verify_empty(&mut fake).is_err());
    }
}
