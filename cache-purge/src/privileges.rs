//! Running as the cache owner, never as root.
//!
//! `cache-purge` deletes as the user nginx writes the cache as (e.g. `www-data`). Started by that
//! user (directly, through `safexec`, or by a systemd unit with `User=www-data`) it just checks
//! that. Started by root (an operator, a unit without `User=`), it needs `--owner` and drops to
//! that user for good, in one straight line of named steps, before anything is opened.

use nix::unistd::{getegid, geteuid, getgid, getuid, setgid, setgroups, setuid, Gid, Uid, User};

use crate::Error;

/// The cache owner: a user name and its ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The user name (or the number given).
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

/// Looks up `name` (a user name or a numeric uid) in the user database.
pub fn lookup(name: &str) -> Result<Owner, Error> {
    let user = if let Ok(uid) = name.parse::<u32>() {
        User::from_uid(Uid::from_raw(uid))
    } else {
        User::from_name(name)
    };
    match user {
        Ok(Some(u)) => Ok(Owner {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }),
        Ok(None) => Err(Error::Usage(format!("--owner: no such user {name:?}"))),
        Err(e) => Err(Error::Failed(format!("--owner: looking up {name:?}: {e}"))),
    }
}

/// Who the process runs as: `Ok(uid)` of the cache owner to use.
///
/// * As root: `owner` is required, must not be root, and the process becomes it
///   ([`become_owner`]) before returning.
/// * As anyone else: the process's own uid is the cache owner; an `owner` given must be it.
pub fn settle(owner: Option<&str>) -> Result<u32, Error> {
    let euid = geteuid().as_raw();
    let uid = getuid().as_raw();
    if euid == 0 || uid == 0 {
        let Some(name) = owner else {
            return Err(Error::Refused(
                "refusing to run as root: give --owner USER (the cache owner) to drop to it, or run as that user".into(),
            ));
        };
        let o = lookup(name)?;
        if o.uid == 0 {
            return Err(Error::Refused(
                "--owner: the cache owner cannot be root".into(),
            ));
        }
        become_owner(&o)?;
        return Ok(o.uid);
    }
    if let Some(name) = owner {
        let o = lookup(name)?;
        if o.uid != euid {
            return Err(Error::Refused(format!(
                "--owner {name} is uid {}, but this process runs as uid {euid} (only root can change user)",
                o.uid
            )));
        }
    }
    Ok(euid)
}

/// As root, becomes `owner` irrevocably: supplementary groups set to the owner's primary group
/// only, then the gid, then the uid (real, effective and saved: `setuid` as root sets all
/// three), then checks that the ids stuck and that root cannot be regained.
pub fn become_owner(owner: &Owner) -> Result<(), Error> {
    let fail = |step: &str, e: nix::Error| {
        Error::Failed(format!("dropping to {}: {step}: {e}", owner.name))
    };
    let gid = Gid::from_raw(owner.gid);
    let uid = Uid::from_raw(owner.uid);
    setgroups(&[gid]).map_err(|e| fail("setgroups", e))?;
    setgid(gid).map_err(|e| fail("setgid", e))?;
    setuid(uid).map_err(|e| fail("setuid", e))?;
    let ok = getuid() == uid && geteuid() == uid && getgid() == gid && getegid() == gid;
    if !ok || setuid(Uid::from_raw(0)).is_ok() {
        return Err(Error::Failed(format!(
            "dropping to {}: the ids did not stick",
            owner.name
        )));
    }
    Ok(())
}
