//! rocker's own settings: `$XDG_CONFIG_HOME/rocker/config.toml`.
//!
//! ```toml
//! [images]
//! max_layer_size = "64G"   # the most a layer may decompress to
//! max_image_size = "256G"  # the most one pull's layers may, all together
//!
//! [storage]
//! rootfs = "overlay"       # or "fuse-overlayfs" or "copy"; default: probed
//!
//! [limits]
//! unenforceable = "warn"   # or "error": limits a host cannot enforce
//!
//! [registry]
//! low_speed_limit = "1k"   # a transfer slower than this (bytes/s) ...
//! low_speed_time = 30      # ... for this many seconds is given up
//! ```

use std::fmt;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::util::fs::read_if_present;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub images: ImagesConfig,
    #[serde(default)]
    pub storage: StorageConfig,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub registry: RegistryConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// A size per second such as "1k" (curl's --speed-limit).
    pub low_speed_limit: Option<String>,
    /// Seconds (curl's --speed-time).
    pub low_speed_time: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// What a run does with limits the host cannot enforce (no cgroup v2
    /// delegation): run without them, warning, as docker and podman do, or
    /// fail.
    #[serde(default)]
    pub unenforceable: Unenforceable,
}

/// See `LimitsConfig::unenforceable`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unenforceable {
    #[default]
    Warn,
    Error,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// Forces how containers get their root file system.
    pub rootfs: Option<RootfsMode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImagesConfig {
    /// A size such as "64G"; a decompression bomb stops here.
    pub max_layer_size: Option<String>,
    /// The same for all the layers one pull brings in.
    pub max_image_size: Option<String>,
}

/// How containers built from images get their root file system (see
/// `rootfs::backing::mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RootfsMode {
    Overlay,
    FuseOverlayfs,
    Copy,
}

impl RootfsMode {
    pub fn parse(text: &str) -> Result<RootfsMode> {
        match text.trim() {
            "overlay" => Ok(RootfsMode::Overlay),
            "fuse-overlayfs" => Ok(RootfsMode::FuseOverlayfs),
            "copy" => Ok(RootfsMode::Copy),
            other => bail!("unknown rootfs mode {other:?}: use overlay, fuse-overlayfs or copy"),
        }
    }
}

impl fmt::Display for RootfsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RootfsMode::Overlay => "overlay",
            RootfsMode::FuseOverlayfs => "fuse-overlayfs",
            RootfsMode::Copy => "copy",
        })
    }
}

pub const DEFAULT_MAX_LAYER_SIZE: u64 = 64 << 30;
pub const DEFAULT_MAX_IMAGE_SIZE: u64 = 256 << 30;

impl Config {
    /// Reads `config.toml` in rocker's config dir; defaults when absent.
    pub fn load(config_dir: &Path) -> Result<Config> {
        let path = config_dir.join("config.toml");
        match read_if_present(&path)? {
            Some(text) => {
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
            }
            None => Ok(Config::default()),
        }
    }

    pub fn max_layer_size(&self) -> Result<u64> {
        match &self.images.max_layer_size {
            Some(text) => parse_size(text).context("[images] max_layer_size in config.toml"),
            None => Ok(DEFAULT_MAX_LAYER_SIZE),
        }
    }

    /// Below how many bytes a second, for how long, a registry transfer is
    /// given up: a registry that trickles must not hold a pull for ever.
    pub fn low_speed(&self) -> Result<(u64, std::time::Duration)> {
        let limit = match &self.registry.low_speed_limit {
            Some(text) => parse_size(text).context("[registry] low_speed_limit in config.toml")?,
            None => DEFAULT_LOW_SPEED_LIMIT,
        };
        let time = self
            .registry
            .low_speed_time
            .unwrap_or(DEFAULT_LOW_SPEED_TIME);
        if time == 0 {
            bail!("[registry] low_speed_time in config.toml must be at least 1 (seconds)");
        }
        Ok((limit, std::time::Duration::from_secs(time)))
    }

    pub fn max_image_size(&self) -> Result<u64> {
        match &self.images.max_image_size {
            Some(text) => parse_size(text).context("[images] max_image_size in config.toml"),
            None => Ok(DEFAULT_MAX_IMAGE_SIZE),
        }
    }
}

const DEFAULT_LOW_SPEED_LIMIT: u64 = 1024;
const DEFAULT_LOW_SPEED_TIME: u64 = 30;

/// `512`, `64k`, `10M`, `2g`, `1T` (powers of 1024, as docker's sizes), an
/// optional trailing `b`.
pub fn parse_size(text: &str) -> Result<u64> {
    let trimmed = text.trim().to_ascii_lowercase();
    let trimmed = trimmed.strip_suffix('b').unwrap_or(&trimmed);
    let (number, shift) = match trimmed.chars().last() {
        Some('k') => (&trimmed[..trimmed.len() - 1], 10),
        Some('m') => (&trimmed[..trimmed.len() - 1], 20),
        Some('g') => (&trimmed[..trimmed.len() - 1], 30),
        Some('t') => (&trimmed[..trimmed.len() - 1], 40),
        _ => (trimmed, 0),
    };
    let Ok(value) = number.parse::<u64>() else {
        bail!("invalid size {text:?}: expected a number with an optional k, m, g or t");
    };
    value
        .checked_shl(shift)
        .filter(|v| v >> shift == value)
        .with_context(|| format!("the size {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (text, want) in [
            ("512", 512),
            ("64k", 65536),
            ("10M", 10 << 20),
            ("2g", 2 << 30),
            ("1Tb", 1 << 40),
        ] {
            assert_eq!(parse_size(text).unwrap(), want, "{text}");
        }
        for bad in ["", "m", "1.5g", "-1", "12q", "99999999999999999999t"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_rootfs_mode_is_one_of_three() {
        let config: Config = toml::from_str("[storage]\nrootfs = \"fuse-overlayfs\"\n").unwrap();
        assert_eq!(config.storage.rootfs, Some(RootfsMode::FuseOverlayfs));
        let err = toml::from_str::<Config>("[storage]\nrootfs = \"vfs\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("overlay") && err.contains("copy"), "{err}");
    }

    #[test]
    fn unknown_settings_are_errors() {
        assert!(toml::from_str::<Config>("[images]\nmax_layer_sizee = \"1g\"\n").is_err());
        let config: Config = toml::from_str("[images]\nmax_layer_size = \"1g\"\n").unwrap();
        assert_eq!(config.max_layer_size().unwrap(), 1 << 30);
    }
}
