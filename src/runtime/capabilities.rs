//! The capabilities a container keeps: podman's default set unless
//! `--cap-add`, `--cap-drop` or `--privileged` say otherwise, inside the
//! container's user namespace only. Everything else is dropped from the
//! bounding set, so no later exec (setuid binaries, file capabilities) can
//! bring it back; inheritable and ambient stay empty (CVE-2022-29162).

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};

use super::seccomp::profile::parse_capability;

pub const DEFAULT_CAPABILITIES: &[Capability] = &[
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FOWNER,
    Capability::CAP_FSETID,
    Capability::CAP_KILL,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETGID,
    Capability::CAP_SETPCAP,
    Capability::CAP_SETUID,
    Capability::CAP_SYS_CHROOT,
];

/// The default set with `add` and without `drop` (names with or without
/// `CAP_`, or `ALL`); docker applies the drops, then the adds.
pub fn chosen(add: &[String], drop: &[String]) -> Result<CapsHashSet> {
    let parse = |names: &[String]| -> Result<(bool, CapsHashSet)> {
        let mut all = false;
        let mut set = CapsHashSet::new();
        for name in names {
            match name.trim().to_ascii_uppercase().as_str() {
                "ALL" | "CAP_ALL" => all = true,
                _ => {
                    set.insert(parse_capability(name)?);
                }
            }
        }
        Ok((all, set))
    };
    let (drop_all, dropped) = parse(drop)?;
    let (add_all, added) = parse(add)?;
    let mut keep: CapsHashSet = match drop_all {
        true => CapsHashSet::new(),
        false => DEFAULT_CAPABILITIES.iter().copied().collect(),
    };
    keep.retain(|cap| !dropped.contains(cap));
    match add_all {
        true => keep.extend(caps::all()),
        false => keep.extend(added),
    }
    Ok(keep)
}

/// The default set, as names, for records.
pub fn default_set() -> CapsHashSet {
    DEFAULT_CAPABILITIES.iter().copied().collect()
}

/// `set` as bits of a capability mask (`CapEff` in /proc/PID/status).
pub fn mask(set: &CapsHashSet) -> u64 {
    set.iter()
        .map(|cap| cap.bitmask())
        .fold(0, |mask, bit| mask | bit)
}

/// Reduces the calling thread to `keep`.
pub fn restrict_to(keep: &CapsHashSet) -> Result<()> {
    // Dropping from the bounding set needs CAP_SETPCAP, which we still hold.
    // Only capabilities this kernel knows can be dropped. /proc says which
    // in one read; probing each one costs a system call apiece (41).
    let supported = caps::runtime::procfs_all_supported(None)
        .unwrap_or_else(|_| caps::runtime::thread_all_supported());
    for cap in supported {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .with_context(|| format!("dropping {cap} from the bounding set"))?;
        }
    }
    caps::clear(None, CapSet::Ambient).context("clearing the ambient capabilities")?;
    caps::clear(None, CapSet::Inheritable).context("clearing the inheritable capabilities")?;
    caps::set(None, CapSet::Effective, keep).context("setting the effective capabilities")?;
    caps::set(None, CapSet::Permitted, keep).context("setting the permitted capabilities")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn drops_then_adds_with_all_for_every_one() {
        let set = chosen(&names(&["NET_RAW"]), &names(&["cap_chown"])).unwrap();
        assert!(set.contains(&Capability::CAP_NET_RAW));
        assert!(!set.contains(&Capability::CAP_CHOWN));
        assert!(set.contains(&Capability::CAP_SETUID));
        assert!(chosen(&[], &names(&["ALL"])).unwrap().is_empty());
        let only = chosen(&names(&["SYS_ADMIN"]), &names(&["ALL"])).unwrap();
        assert_eq!(only, [Capability::CAP_SYS_ADMIN].into_iter().collect());
        assert_eq!(chosen(&names(&["ALL"]), &[]).unwrap(), caps::all());
        assert!(chosen(&names(&["FLY"]), &[]).is_err());
        assert_eq!(mask(&only), 1 << 21);
    }
}
