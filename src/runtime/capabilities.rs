//! The capabilities a container keeps: podman's default set, inside the
//! container's user namespace only. Everything else is dropped from the
//! bounding set, so no later exec (setuid binaries, file capabilities) can
//! bring it back; inheritable and ambient stay empty (CVE-2022-29162).

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};

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

/// Reduces the calling thread to the default set.
pub fn restrict_to_default() -> Result<()> {
    let keep: CapsHashSet = DEFAULT_CAPABILITIES.iter().copied().collect();
    // Dropping from the bounding set needs CAP_SETPCAP, which we still hold.
    // Only capabilities this kernel knows can be dropped.
    for cap in caps::runtime::thread_all_supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .with_context(|| format!("dropping {cap} from the bounding set"))?;
        }
    }
    caps::clear(None, CapSet::Ambient).context("clearing the ambient capabilities")?;
    caps::clear(None, CapSet::Inheritable).context("clearing the inheritable capabilities")?;
    caps::set(None, CapSet::Effective, &keep).context("setting the effective capabilities")?;
    caps::set(None, CapSet::Permitted, &keep).context("setting the permitted capabilities")?;
    Ok(())
}
