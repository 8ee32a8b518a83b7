//! Who is calling: the uid the kernel reports for a Unix socket peer (`SO_PEERCRED`), turned into
//! the user and group names `allow=` is written with.
//!
//! Names come from /etc/passwd and /etc/group read directly (no NSS: the service is sandboxed
//! and the configuration names local accounts). Groups are the primary group plus every group
//! that lists the user as a member; the peer's supplementary groups at connect time are not
//! available from `SO_PEERCRED`, and reading them from /proc by pid would race pid reuse.

use std::fs;

/// A caller of the Unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Real uid from `SO_PEERCRED`.
    pub uid: u32,
    /// Login name (`uid:<n>` when /etc/passwd has none).
    pub name: String,
    /// Group names.
    pub groups: Vec<String>,
    /// Root or the cache owner itself: either could delete the files directly, so the service
    /// grants it every site it serves.
    pub owner_or_root: bool,
}

impl Caller {
    /// Identifies `uid` (primary `gid`) for a service running as `me`.
    pub fn identify(uid: u32, gid: u32, me: u32) -> Caller {
        let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
        let group = fs::read_to_string("/etc/group").unwrap_or_default();
        Caller::from_files(uid, gid, me, &passwd, &group)
    }

    fn from_files(uid: u32, gid: u32, me: u32, passwd: &str, group: &str) -> Caller {
        let name = passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 4 && f[2].parse() == Ok(uid))
            .map(|f| f[0].to_owned());
        let mut groups = Vec::new();
        for l in group.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                continue;
            }
            let primary = f[2].parse() == Ok(gid);
            let member = name
                .as_deref()
                .is_some_and(|n| f[3].split(',').any(|m| m == n));
            if (primary || member) && !groups.iter().any(|g| g == f[0]) {
                groups.push(f[0].to_owned());
            }
        }
        Caller {
            uid,
            name: name.unwrap_or_else(|| format!("uid:{uid}")),
            groups,
            owner_or_root: uid == 0 || uid == me,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_groups_from_the_files() {
        let passwd = "root:x:0:0::/root:/bin/sh\nsite:x:1001:1001::/:/bin/false\n";
        let group = "root:x:0:\nsite:x:1001:\nadmins:x:2000:bob,site\nother:x:2001:bob\n";
        let c = Caller::from_files(1001, 1001, 33, passwd, group);
        assert_eq!(c.name, "site");
        assert_eq!(c.groups, vec!["site", "admins"]);
        assert!(!c.owner_or_root);
        assert!(Caller::from_files(0, 0, 33, passwd, group).owner_or_root);
        assert!(Caller::from_files(33, 33, 33, passwd, group).owner_or_root);
        assert_eq!(Caller::from_files(5, 5, 33, passwd, group).name, "uid:5");
    }
}
