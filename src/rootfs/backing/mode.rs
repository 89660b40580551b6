//! How a container built from an image gets its root file system, chosen
//! once per host (per boot) and reported by `rocker info`:
//!
//! 1. kernel overlayfs mounted inside the user namespace (`userxattr`,
//!    Linux 5.11+): no copy, no helper process;
//! 2. `fuse-overlayfs`, when the kernel refuses overlay in a user namespace;
//! 3. a copy of the layers, when neither works (slow; warned about).
//!
//! `ROCKER_ROOTFS` or `[storage] rootfs` in config.toml forces one.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::host::config::Config;
pub use crate::host::config::RootfsMode;
use crate::host::dirs::Dirs;
use crate::host::probe::{self, Check};

/// The environment variable that forces a mode (it wins over config.toml).
pub const MODE_VARIABLE: &str = "ROCKER_ROOTFS";

/// The probe's verdict, cached in the runtime dir: it lasts until reboot,
/// which is when the kernel can change.
const CACHE_FILE: &str = "rootfs-mode";

/// A mode and why it was picked.
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    pub mode: RootfsMode,
    pub reason: String,
}

/// The forced mode, if any: the environment first, then config.toml.
fn forced(config: &Config) -> Result<Option<Choice>> {
    if let Ok(text) = std::env::var(MODE_VARIABLE) {
        let mode = RootfsMode::parse(&text).map_err(|e| e.context(MODE_VARIABLE))?;
        return Ok(Some(Choice {
            mode,
            reason: format!("forced by {MODE_VARIABLE}"),
        }));
    }
    if let Some(mode) = config.storage.rootfs {
        return Ok(Some(Choice {
            mode,
            reason: "forced by [storage] rootfs in config.toml".into(),
        }));
    }
    Ok(None)
}

/// Whether fuse-overlayfs could serve: the program and a usable /dev/fuse.
fn fuse_overlayfs_usable() -> Check {
    let program = probe::program("fuse-overlayfs", "fuse-overlayfs");
    if !program.ok {
        return Check::no(format!("fuse-overlayfs is {}", program.detail));
    }
    let device = probe::device("/dev/fuse");
    if !device.ok {
        return Check::no(format!("/dev/fuse: {}", device.detail));
    }
    Check::yes(program.detail)
}

/// The best mode that works here, given the kernel overlay probe and
/// whether fuse-overlayfs could take over.
fn best_mode(overlay: Check, fuse: Check) -> Choice {
    if overlay.ok {
        return Choice {
            mode: RootfsMode::Overlay,
            reason: overlay.detail,
        };
    }
    if fuse.ok {
        return Choice {
            mode: RootfsMode::FuseOverlayfs,
            reason: format!("kernel overlay is unavailable ({})", overlay.detail),
        };
    }
    Choice {
        mode: RootfsMode::Copy,
        reason: format!(
            "kernel overlay is unavailable ({}) and so is fuse-overlayfs ({})",
            overlay.detail, fuse.detail
        ),
    }
}

/// The most lower layers the kernel's overlayfs stacks (OVL_MAX_STACK).
pub const KERNEL_OVERLAY_MAX_LAYERS: usize = 500;

/// The mode for an image of `layers` layers: `choice`, unless that is the
/// kernel overlay and the image has more layers than it stacks; then
/// fuse-overlayfs when it is usable, else a copy, and why.
pub fn for_layers(choice: Choice, layers: usize) -> Choice {
    if choice.mode != RootfsMode::Overlay || layers <= KERNEL_OVERLAY_MAX_LAYERS {
        return choice;
    }
    let why = format!(
        "the image has {layers} layers and the kernel overlay stacks at most \
         {KERNEL_OVERLAY_MAX_LAYERS}"
    );
    let fuse = fuse_overlayfs_usable();
    match fuse.ok {
        true => Choice {
            mode: RootfsMode::FuseOverlayfs,
            reason: why,
        },
        false => Choice {
            mode: RootfsMode::Copy,
            reason: format!("{why}, and fuse-overlayfs is unavailable ({})", fuse.detail),
        },
    }
}

/// The mode for this run: forced, cached from an earlier probe, or probed
/// now (and cached).
pub fn choose(dirs: &Dirs, config: &Config) -> Result<Choice> {
    if let Some(choice) = forced(config)? {
        return Ok(choice);
    }
    let runtime = dirs.ensure_runtime()?;
    let cache = runtime.join(CACHE_FILE);
    if let Ok(text) = std::fs::read_to_string(&cache) {
        if let Some((mode, reason)) = text.split_once('\n') {
            if let Ok(mode) = RootfsMode::parse(mode) {
                return Ok(Choice {
                    mode,
                    reason: reason.trim_end().to_string(),
                });
            }
        }
    }
    crate::host::dirs::ensure_private_dir(&dirs.data)?;
    let overlay = probe::overlay_in_userns(&dirs.data);
    Ok(remember(
        runtime,
        best_mode(overlay, fuse_overlayfs_usable()),
    ))
}

fn remember(runtime: &Path, choice: Choice) -> Choice {
    // A failed write only costs the next run another probe.
    let _ = crate::util::fs::write_atomic(
        &runtime.join(CACHE_FILE),
        format!("{}\n{}\n", choice.mode, choice.reason).as_bytes(),
        0o600,
    );
    choice
}

/// For `rocker info`, which has just probed kernel overlay: the forced
/// mode, else the best one (refreshing the cache, so `rocker info` is also
/// how to re-probe after a change).
pub fn report(dirs: &Dirs, config: &Config, overlay: &Check) -> Result<Choice> {
    if let Some(choice) = forced(config)? {
        return Ok(choice);
    }
    Ok(remember(
        dirs.ensure_runtime()?,
        best_mode(overlay.clone(), fuse_overlayfs_usable()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_round_trip_and_unknown_ones_are_named() {
        for mode in [
            RootfsMode::Overlay,
            RootfsMode::FuseOverlayfs,
            RootfsMode::Copy,
        ] {
            assert_eq!(RootfsMode::parse(&mode.to_string()).unwrap(), mode);
        }
        let err = RootfsMode::parse("vfs").unwrap_err().to_string();
        assert!(err.contains("overlay, fuse-overlayfs or copy"), "{err}");
    }

    #[test]
    fn kernel_overlay_then_fuse_overlayfs_then_a_copy() {
        let yes = || Check::yes("fine");
        let no = |why: &str| Check::no(why);
        assert_eq!(best_mode(yes(), no("x")).mode, RootfsMode::Overlay);
        let fuse = best_mode(no("old kernel"), yes());
        assert_eq!(fuse.mode, RootfsMode::FuseOverlayfs);
        assert!(fuse.reason.contains("old kernel"), "{}", fuse.reason);
        let copy = best_mode(no("old kernel"), no("not installed"));
        assert_eq!(copy.mode, RootfsMode::Copy);
        assert!(copy.reason.contains("not installed"), "{}", copy.reason);
    }
}
