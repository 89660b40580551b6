//! Files rocker adds to a container's view of its image, as a read-only
//! layer of its own on top of the image's: they are in no image layer and
//! never in the container's upper dir, so neither a commit nor `diff` sees
//! them. Today that is apt's sandbox setting under root emulation.
//!
//! apt drops to its `_apt` user to fetch and then checks that it has: a
//! faked setuid (see `runtime::root_emulation`) fails that check, so a
//! container whose user is emulated root tells apt to stay root, which is
//! what apt does when it runs as root on a system without `_apt`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::util::fs::{remove_tree, write_atomic};

/// The layer's directory in the store, named for its content so that a
/// change makes a new one.
const APT_SANDBOX_LAYER: &str = "generated/apt-sandbox-1";
/// The drop-in, read first among apt's parts so that the image's own
/// settings still win.
pub const APT_SANDBOX_DROP_IN: &str = "etc/apt/apt.conf.d/00rocker-sandbox";
const APT_SANDBOX_SETTING: &str =
    "// Written by rocker: root is emulated in this container, so apt cannot\n\
// drop to its _apt user (see rocker's README, Root emulation).\n\
APT::Sandbox::User \"root\";\n";

/// The apt sandbox layer in the store rooted at `store_root`, made once.
pub fn apt_sandbox_layer(store_root: &Path) -> Result<PathBuf> {
    let layer = store_root.join(APT_SANDBOX_LAYER);
    if layer.join(APT_SANDBOX_DROP_IN).is_file() {
        return Ok(layer);
    }
    // Made aside and renamed into place: another rocker may be at it too.
    // Named as the store's temp dirs are (pid first), so that a pull's
    // sweep of dead processes' dirs leaves it alone.
    let temp = store_root.join(format!("tmp/{}-apt-sandbox", std::process::id()));
    let _ = remove_tree(&temp);
    write_atomic(
        &temp.join(APT_SANDBOX_DROP_IN),
        APT_SANDBOX_SETTING.as_bytes(),
        0o644,
    )?;
    let parent = layer.parent().context("a layer path without a parent")?;
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    match std::fs::rename(&temp, &layer) {
        Ok(()) => Ok(layer),
        // Someone else's rename won: theirs is the same.
        Err(_) if layer.join(APT_SANDBOX_DROP_IN).is_file() => {
            let _ = remove_tree(&temp);
            Ok(layer)
        }
        Err(err) => Err(err).with_context(|| format!("creating {}", layer.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn the_layer_is_made_once_and_says_stay_root() {
        let store = ScratchDir::new("generated");
        std::fs::create_dir_all(store.join("tmp")).unwrap();
        let layer = apt_sandbox_layer(&store).unwrap();
        let text = std::fs::read_to_string(layer.join(APT_SANDBOX_DROP_IN)).unwrap();
        assert!(text.contains("APT::Sandbox::User \"root\";"), "{text}");
        assert_eq!(apt_sandbox_layer(&store).unwrap(), layer);
        assert_eq!(std::fs::read_dir(store.join("tmp")).unwrap().count(), 0);
    }
}
