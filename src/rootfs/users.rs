//! Resolving `-u USER[:GROUP]` (and later an image's `User`) against the
//! container's /etc/passwd and /etc/group, the way docker does: names must
//! exist, numbers need not; the group defaults to the user's primary group,
//! else 0; HOME comes from the passwd entry, else `/`.

use anyhow::{bail, Result};

/// The largest /etc/passwd or /etc/group rocker reads from a container's
/// root (the root is untrusted: an endless file must not fill memory).
pub const ACCOUNT_FILE_LIMIT: u64 = 4 << 20;

use crate::spec::ContainerUser;
use crate::spec::UserSpec;

/// A user as the container will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub ids: ContainerUser,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            [name, _, uid, gid, _, home, ..] => Some(PasswdEntry {
                name,
                uid: uid.parse().ok()?,
                gid: gid.parse().ok()?,
                home,
            }),
            _ => None,
        }
    })
}

fn group_id(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let entry_name = fields.next()?;
        let gid = fields.nth(1)?;
        (entry_name == name).then(|| gid.parse().ok()).flatten()
    })
}

/// A group by number, or by name from the container's /etc/group.
pub fn group(spec: &str, group: Option<&str>) -> Result<u32> {
    match spec.parse::<u32>() {
        Ok(gid) => Ok(gid),
        Err(_) => match group_id(group.unwrap_or(""), spec) {
            Some(gid) => Ok(gid),
            None => bail!("group {spec:?} not found in the container's /etc/group"),
        },
    }
}

/// Resolves the user (root when `spec` is `None`) with the container's
/// passwd and group files, when it has them.
pub fn resolve(
    spec: Option<&UserSpec>,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ResolvedUser> {
    let user = spec.map_or("0", |s| s.user.as_str());
    let passwd = passwd.unwrap_or("");
    let entry = match user.parse::<u32>() {
        Ok(uid) => passwd_entries(passwd).find(|e| e.uid == uid),
        Err(_) => match passwd_entries(passwd).find(|e| e.name == user) {
            Some(entry) => Some(entry),
            None => bail!("user {user:?} not found in the container's /etc/passwd"),
        },
    };
    let uid = match (&entry, user.parse::<u32>()) {
        (_, Ok(uid)) => uid,
        (Some(entry), Err(_)) => entry.uid,
        (None, Err(_)) => unreachable!("a named user without an entry bailed above"),
    };
    let gid = match spec.and_then(|s| s.group.as_deref()) {
        Some(group_spec) => self::group(group_spec, group)?,
        None => entry.as_ref().map_or(0, |e| e.gid),
    };
    let home = entry
        .as_ref()
        .map_or("/", |e| if e.home.is_empty() { "/" } else { e.home });
    Ok(ResolvedUser {
        ids: ContainerUser { uid, gid },
        home: home.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
                          app:x:1000:1001:App:/home/app:/bin/sh\n\
                          broken line\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:app\napp:x:1001:\n";

    fn resolve_str(spec: Option<&str>) -> Result<ResolvedUser> {
        let spec = spec.map(|s| UserSpec::parse(s).unwrap());
        resolve(spec.as_ref(), Some(PASSWD), Some(GROUP))
    }

    fn ids(uid: u32, gid: u32, home: &str) -> ResolvedUser {
        ResolvedUser {
            ids: ContainerUser { uid, gid },
            home: home.into(),
        }
    }

    #[test]
    fn table() {
        let cases = [
            (None, ids(0, 0, "/root")),
            (Some("app"), ids(1000, 1001, "/home/app")),
            (Some("1000"), ids(1000, 1001, "/home/app")),
            (Some("1000:50"), ids(1000, 50, "/home/app")),
            (Some("app:staff"), ids(1000, 50, "/home/app")),
            (Some("4242"), ids(4242, 0, "/")),
            (Some("4242:4243"), ids(4242, 4243, "/")),
        ];
        for (spec, want) in cases {
            assert_eq!(resolve_str(spec).unwrap(), want, "{spec:?}");
        }
    }

    #[test]
    fn unknown_names_fail_with_the_file_named() {
        let err = resolve_str(Some("nobody-here")).unwrap_err().to_string();
        assert!(err.contains("/etc/passwd"), "{err}");
        let err = resolve_str(Some("app:nogroup")).unwrap_err().to_string();
        assert!(err.contains("/etc/group"), "{err}");
    }

    #[test]
    fn no_passwd_file_means_numeric_ids_and_root_home() {
        assert_eq!(resolve(None, None, None).unwrap(), ids(0, 0, "/"));
    }
}
