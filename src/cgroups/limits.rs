//! The resource limits `run` takes, and the cgroup v2 files they become,
//! mapped as docker maps them.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// cpu.max's period: docker's (and the kernel's default) 100 ms.
const CPU_PERIOD_US: u64 = 100_000;

/// What the container may use. `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// `--memory`, bytes.
    pub memory: Option<u64>,
    /// `--memory-swap`: memory plus swap, bytes; `Some(-1)` is unlimited swap.
    pub memory_swap: Option<i64>,
    /// `--cpus`: how many CPUs' worth of time per period.
    pub cpus: Option<f64>,
    /// `--cpu-weight` (1-10000), or `--cpu-shares` mapped onto it.
    pub cpu_weight: Option<u64>,
    /// `--pids-limit`; `Some(-1)` (or 0) is unlimited.
    pub pids: Option<i64>,
    /// `--memory-reservation`: memory the kernel reclaims from others
    /// first (cgroup v2's memory.low), bytes.
    #[serde(default)]
    pub memory_reservation: Option<u64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// Checks the flags against each other, as docker does.
    pub fn check(&self) -> Result<()> {
        if let Some(memory) = self.memory {
            if memory < 6 << 20 {
                bail!("--memory must be at least 6m (docker's minimum): a container needs some");
            }
        }
        match (self.memory, self.memory_swap) {
            (None, Some(swap)) if swap != -1 => {
                bail!("--memory-swap needs --memory (it is memory plus swap)")
            }
            (Some(memory), Some(swap)) if swap != -1 && (swap as u64) < memory => {
                bail!("--memory-swap must be at least --memory (it is memory plus swap), or -1")
            }
            _ => {}
        }
        if let (Some(memory), Some(reservation)) = (self.memory, self.memory_reservation) {
            if reservation > memory {
                bail!(
                    "--memory-reservation must be at most --memory (it is a soft limit below it)"
                );
            }
        }
        if let Some(cpus) = self.cpus {
            if !(cpus > 0.0 && cpus.is_finite()) || cpus * (CPU_PERIOD_US as f64) < 1000.0 {
                bail!("--cpus must be above 0.01");
            }
        }
        if let Some(weight) = self.cpu_weight {
            if !(1..=10_000).contains(&weight) {
                bail!("--cpu-weight must be between 1 and 10000");
            }
        }
        Ok(())
    }

    /// The controllers these limits need.
    pub fn controllers(&self) -> Vec<&'static str> {
        let mut needed = vec![];
        if self.cpus.is_some() || self.cpu_weight.is_some() {
            needed.push("cpu");
        }
        if self.memory.is_some() || self.memory_swap.is_some() || self.memory_reservation.is_some()
        {
            needed.push("memory");
        }
        if self.pids.is_some() {
            needed.push("pids");
        }
        needed
    }

    /// The files to write in the container's cgroup, and what.
    pub fn files(&self) -> Vec<(&'static str, String)> {
        let mut files = vec![];
        if let Some(memory) = self.memory {
            files.push(("memory.max", memory.to_string()));
            // docker: without --memory-swap, swap may be as large as memory.
            let swap = match self.memory_swap {
                None => memory.to_string(),
                Some(-1) => "max".to_string(),
                Some(total) => (total as u64 - memory).to_string(),
            };
            files.push(("memory.swap.max", swap));
        }
        if let Some(reservation) = self.memory_reservation {
            files.push(("memory.low", reservation.to_string()));
        }
        if let Some(cpus) = self.cpus {
            let quota = (cpus * CPU_PERIOD_US as f64).round() as u64;
            files.push(("cpu.max", format!("{quota} {CPU_PERIOD_US}")));
        }
        if let Some(weight) = self.cpu_weight {
            files.push(("cpu.weight", weight.to_string()));
        }
        if let Some(pids) = self.pids {
            let value = match pids {
                ..=0 => "max".to_string(),
                n => n.to_string(),
            };
            files.push(("pids.max", value));
        }
        files
    }
}

/// `--cpu-shares` (cgroup v1's 2-262144, default 1024) as cgroup v2's
/// cpu.weight (1-10000, default 100), by the formula runc and crun use.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// `--cpus 1.5`.
pub fn parse_cpus(text: &str) -> Result<f64> {
    match text.trim().parse::<f64>() {
        Ok(cpus) if cpus > 0.0 && cpus.is_finite() => Ok(cpus),
        _ => bail!("invalid --cpus {text:?}: expected a positive number such as 1.5"),
    }
}

/// `--memory-swap`: a size, or -1 for unlimited swap.
pub fn parse_swap(text: &str) -> Result<i64> {
    if text.trim() == "-1" {
        return Ok(-1);
    }
    let size = crate::host::config::parse_size(text)?;
    i64::try_from(size).map_err(|_| anyhow::anyhow!("--memory-swap {text:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_as_docker_maps_them() {
        let limits = Limits {
            memory: Some(256 << 20),
            memory_swap: Some(256 << 20),
            cpus: Some(1.5),
            cpu_weight: Some(50),
            pids: Some(100),
            memory_reservation: Some(128 << 20),
        };
        limits.check().unwrap();
        assert_eq!(
            limits.files(),
            vec![
                ("memory.max", (256u64 << 20).to_string()),
                ("memory.swap.max", "0".to_string()),
                ("memory.low", (128u64 << 20).to_string()),
                ("cpu.max", "150000 100000".to_string()),
                ("cpu.weight", "50".to_string()),
                ("pids.max", "100".to_string()),
            ]
        );
        assert_eq!(limits.controllers(), ["cpu", "memory", "pids"]);
    }

    #[test]
    fn swap_defaults_to_the_memory_size_and_minus_one_is_unlimited() {
        let memory = Limits {
            memory: Some(64 << 20),
            ..Limits::default()
        };
        assert_eq!(
            memory.files()[1],
            ("memory.swap.max", (64u64 << 20).to_string())
        );
        let unlimited = Limits {
            memory_swap: Some(-1),
            ..memory
        };
        assert_eq!(unlimited.files()[1], ("memory.swap.max", "max".to_string()));
        assert_eq!(parse_swap("-1").unwrap(), -1);
        assert_eq!(parse_swap("1g").unwrap(), 1 << 30);
    }

    #[test]
    fn inconsistent_flags_are_refused() {
        let swap_alone = Limits {
            memory_swap: Some(1 << 30),
            ..Limits::default()
        };
        assert!(swap_alone.check().is_err());
        let swap_below_memory = Limits {
            memory: Some(1 << 30),
            memory_swap: Some(1 << 20),
            ..Limits::default()
        };
        assert!(swap_below_memory.check().is_err());
        let tiny = Limits {
            memory: Some(1 << 20),
            ..Limits::default()
        };
        assert!(tiny.check().is_err());
        assert!(parse_cpus("0").is_err() && parse_cpus("x").is_err());
        assert!(Limits::default().is_empty() && Limits::default().controllers().is_empty());
    }

    #[test]
    fn shares_become_weights() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }
}
