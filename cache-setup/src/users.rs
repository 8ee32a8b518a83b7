//! Account look-ups in /etc/passwd and /etc/group (read as files: cache-setup names accounts,
//! it never switches to them, so NSS modules are not needed).

use std::fs;

/// The primary group name of `user`, if both are in the local files.
pub fn primary_group(user: &str) -> Option<String> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    let gid = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[0] == user).then(|| f[3].to_string())
    })?;
    let group = fs::read_to_string("/etc/group").ok()?;
    group.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[2] == gid).then(|| f[0].to_string())
    })
}

/// The names of every group `user` belongs to: its primary group and the groups listing it.
pub fn groups_of(user: &str) -> Vec<String> {
    let mut out: Vec<String> = primary_group(user).into_iter().collect();
    if let Ok(group) = fs::read_to_string("/etc/group") {
        for l in group.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() >= 4 && f[3].split(',').any(|m| m == user) && !out.iter().any(|g| g == f[0])
            {
                out.push(f[0].to_string());
            }
        }
    }
    out
}
