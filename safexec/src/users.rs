//! Account and group lookups from `/etc/passwd` and `/etc/group`, read directly.
//!
//! No NSS: a setuid-root process must not load NSS modules chosen by system configuration it
//! does not control (peers.md §3 class 6), and the static musl build has none anyway.
#![forbid(unsafe_code)]

/// An account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
}

/// Finds an account in passwd-format text.
pub fn find_in(text: &str, pred: impl Fn(&Account) -> bool) -> Option<Account> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(Account {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            })
        })
        .find(|a| pred(a))
}

fn passwd() -> String {
    std::fs::read_to_string("/etc/passwd").unwrap_or_default()
}

/// Looks up an account by name.
pub fn by_name(name: &str) -> Option<Account> {
    find_in(&passwd(), |a| a.name == name)
}

/// Looks up an account by uid.
pub fn by_uid(uid: u32) -> Option<Account> {
    find_in(&passwd(), |a| a.uid == uid)
}

/// The names of the groups `account` belongs to, from group-format text: the group whose gid is
/// its primary gid, and every group that lists its name as a member. This is what `allow=@group`
/// of a `cache_root` line is matched against; the caller's own supplementary group list is not
/// used, since a setuid caller can start us with any subset of it (or none).
pub fn groups_in(text: &str, account: &Account) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || f[0].is_empty() {
            continue;
        }
        let primary = f[2].parse::<u32>().ok() == Some(account.gid);
        let member = f[3].split(',').any(|m| m.trim() == account.name);
        if (primary || member) && !out.iter().any(|g| g == f[0]) {
            out.push(f[0].to_string());
        }
    }
    out
}

/// The group names of `account` from `/etc/group` (see [`groups_in`]).
pub fn groups_of(account: &Account) -> Vec<String> {
    groups_in(
        &std::fs::read_to_string("/etc/group").unwrap_or_default(),
        account,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_lines() {
        let text = "root:x:0:0:root:/root:/bin/bash\n#c\nbad line\nnobody:x:65534:65534::/nonexistent:/usr/sbin/nologin\n";
        let n = find_in(text, |a| a.name == "nobody").unwrap();
        assert_eq!((n.uid, n.gid), (65534, 65534));
        assert_eq!(find_in(text, |a| a.uid == 0).unwrap().name, "root");
        assert!(find_in(text, |a| a.name == "x").is_none());
    }

    #[test]
    fn group_membership_from_group_file() {
        let a = Account {
            name: "site1".into(),
            uid: 1001,
            gid: 1001,
        };
        let text = "root:x:0:\nsite1:x:1001:\nadmins:x:2000:bob,site1\nother:x:2001:site10,xsite1\n#c:x:1001:\nbad\nweb:x:2002: site1 ,bob\n";
        assert_eq!(groups_in(text, &a), ["site1", "admins", "web"]);
        assert!(groups_in("", &a).is_empty());
    }
}
