//! Account lookups from `/etc/passwd`, read directly.
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
}
