//! User-defined networks (`network create`): their definitions, kept in
//! the store as `networks/NAME.json`. What a network is while containers
//! use it (a bridge in rocker's network namespace) is `keeper`'s part.
//!
//! Each network gets a /24 of its own, 10.89.N.0/24 by default as podman
//! gives them, picked under the networks lock so two creations never take
//! the same one. slirp4netns's virtual network is the subnet itself: its
//! gateway (.2, which reaches the outside) and DNS forwarder (.3) are the
//! containers' too, and containers take addresses from .10 up.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::Ipv4Network;
use crate::error::StatusError;
use crate::util::fs::{read_json, write_atomic};
use crate::util::lock::FileLock;

pub const NETWORKS_DIR: &str = "networks";
const LOCK_FILE: &str = ".lock";
/// The first container address of a network, after slirp4netns's own.
const FIRST_HOST: u32 = 10;

/// Names `--network` gives a meaning of its own.
const RESERVED: [&str; 8] = [
    "none",
    "host",
    "slirp4netns",
    "pasta",
    "bridge",
    "default",
    "private",
    "container",
];

/// What `networks/NAME.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub name: String,
    /// 64 hex digits, as docker's.
    pub id: String,
    /// Nanoseconds since the epoch.
    pub created: u64,
    pub subnet: Ipv4Network,
    /// No way out: containers reach each other only.
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl NetworkRecord {
    /// The containers' way out: slirp4netns's address on the subnet.
    pub fn gateway(&self) -> Ipv4Addr {
        self.subnet.host(2)
    }

    /// slirp4netns's DNS forwarder.
    pub fn nameserver(&self) -> Ipv4Addr {
        self.subnet.host(3)
    }

    /// The container addresses: offsets into the subnet.
    pub fn host_offsets(&self) -> std::ops::RangeInclusive<u32> {
        let size = 1u32 << (32 - u32::from(self.subnet.prefix));
        // Not the broadcast address.
        FIRST_HOST..=size - 2
    }

    /// The bridge's name in rocker's network namespace: docker's `br-`
    /// and 12 digits of the id (15 bytes, the most a link name may have).
    pub fn bridge_name(&self) -> String {
        format!("br-{}", &self.id[..12])
    }
}

/// What a container is called on its networks, as docker names it: its
/// name, its aliases, and its short id.
pub fn dns_names(name: &str, aliases: &[String], id: &str) -> Vec<String> {
    let mut names = vec![name.to_string()];
    names.extend(aliases.iter().cloned());
    names.push(id[..12].to_string());
    names
}

/// What `network create` asks for.
#[derive(Debug, Default)]
pub struct NewNetwork {
    pub name: String,
    pub subnet: Option<Ipv4Network>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// The store's networks.
pub struct Networks {
    root: PathBuf,
}

impl Networks {
    /// The networks of the store at `data` (rocker's data dir).
    pub fn open(data: &Path) -> Result<Networks> {
        let root = data.join(NETWORKS_DIR);
        std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        Ok(Networks { root })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.json"))
    }

    /// Held while networks are created or removed.
    pub fn lock(&self) -> Result<FileLock> {
        FileLock::exclusive(&self.root.join(LOCK_FILE))
    }

    /// The network `name`, if it exists.
    pub fn get(&self, name: &str) -> Result<Option<NetworkRecord>> {
        if crate::util::names::check_object_name("network", name).is_err() {
            return Ok(None);
        }
        read_json(&self.path(name)).with_context(|| format!("reading the network {name}"))
    }

    /// The network `name` or id (a prefix of it will do, as docker takes),
    /// or an error that exits 1 as docker's does.
    pub fn find(&self, name_or_id: &str) -> Result<NetworkRecord> {
        if let Some(network) = self.get(name_or_id)? {
            return Ok(network);
        }
        let by_id: Vec<NetworkRecord> = self
            .list()?
            .into_iter()
            .filter(|n| !name_or_id.is_empty() && n.id.starts_with(name_or_id))
            .collect();
        match by_id.len() {
            1 => Ok(by_id.into_iter().next().expect("one")),
            0 => Err(StatusError::new(
                1,
                format!("network {name_or_id} not found (rocker network ls lists them; rocker network create {name_or_id} makes it)"),
            )
            .into()),
            _ => Err(StatusError::new(1, format!("network id prefix {name_or_id} is ambiguous")).into()),
        }
    }

    /// Every network, by name.
    pub fn list(&self) -> Result<Vec<NetworkRecord>> {
        let entries = std::fs::read_dir(&self.root)
            .with_context(|| format!("reading {}", self.root.display()))?;
        let mut networks = vec![];
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let Some(name) = file.strip_suffix(".json") else {
                continue;
            };
            if let Ok(Some(network)) = self.get(name) {
                networks.push(network);
            }
        }
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(networks)
    }

    /// Makes a network; a name already taken exits 1, as docker's does.
    pub fn create(&self, new: NewNetwork) -> Result<NetworkRecord> {
        crate::util::names::check_object_name("network", &new.name)?;
        if RESERVED.contains(&new.name.as_str()) {
            bail!(
                "{} is a network mode of --network, not a name a network can take",
                new.name
            );
        }
        let _lock = self.lock()?;
        if self.get(&new.name)?.is_some() {
            return Err(StatusError::new(
                1,
                format!("network with name {} already exists", new.name),
            )
            .into());
        }
        let taken: Vec<Ipv4Network> = self.list()?.into_iter().map(|n| n.subnet).collect();
        let subnet = match new.subnet {
            Some(subnet) => {
                check_subnet(&subnet)?;
                if let Some(other) = taken.iter().find(|t| t.overlaps(&subnet)) {
                    bail!("the subnet {subnet} overlaps {other}, which another network has");
                }
                subnet
            }
            None => (0..=255)
                .map(|n| Ipv4Network {
                    address: Ipv4Addr::new(10, 89, n, 0),
                    prefix: 24,
                })
                .find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
                .context("every 10.89.N.0/24 is taken; give the network a --subnet")?,
        };
        let record = NetworkRecord {
            name: new.name,
            id: crate::util::random::hex_id()?,
            created: crate::util::time::now_nanos(),
            subnet,
            internal: new.internal,
            labels: new.labels,
        };
        write_atomic(
            &self.path(&record.name),
            &serde_json::to_vec_pretty(&record)?,
            0o644,
        )
        .with_context(|| format!("writing the network {}", record.name))?;
        Ok(record)
    }

    /// The subnets of every network but `network`: a container on it is
    /// kept from them (see `AttachRequest::isolated`).
    pub fn others_subnets(&self, network: &NetworkRecord) -> Result<Vec<Ipv4Network>> {
        Ok(self
            .list()?
            .into_iter()
            .filter(|other| other.id != network.id)
            .map(|other| other.subnet)
            .collect())
    }

    /// Removes the network's definition; the caller has checked that no
    /// container is attached.
    pub fn remove(&self, network: &NetworkRecord) -> Result<()> {
        std::fs::remove_file(self.path(&network.name))
            .with_context(|| format!("removing the network {}", network.name))
    }
}

/// A subnet slirp4netns can serve and with room for containers.
fn check_subnet(subnet: &Ipv4Network) -> Result<()> {
    if !(8..=28).contains(&subnet.prefix) {
        bail!("the subnet {subnet} must be a /8 to a /28");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn networks_take_the_next_free_subnet_and_refuse_taken_names() {
        let scratch = ScratchDir::new("networks");
        let networks = Networks::open(&scratch).unwrap();
        let app = networks
            .create(NewNetwork {
                name: "app".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(app.subnet.to_string(), "10.89.0.0/24");
        assert_eq!(app.gateway(), Ipv4Addr::new(10, 89, 0, 2));
        assert_eq!(app.bridge_name().len(), 15);
        let custom = networks
            .create(NewNetwork {
                name: "custom".into(),
                subnet: Some(Ipv4Network::parse("10.89.1.0/24").unwrap()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(custom.host_offsets(), 10..=254);
        let next = networks
            .create(NewNetwork {
                name: "next".into(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(next.subnet.to_string(), "10.89.2.0/24");
        let again = networks.create(NewNetwork {
            name: "app".into(),
            ..Default::default()
        });
        assert!(format!("{:#}", again.unwrap_err()).contains("already exists"));
        let overlapping = networks.create(NewNetwork {
            name: "wide".into(),
            subnet: Some(Ipv4Network::parse("10.88.0.0/15").unwrap()),
            ..Default::default()
        });
        assert!(format!("{:#}", overlapping.unwrap_err()).contains("overlaps"));
        for reserved in ["host", "none", "bridge"] {
            assert!(networks
                .create(NewNetwork {
                    name: reserved.into(),
                    ..Default::default()
                })
                .is_err());
        }
        assert_eq!(networks.find(&app.id[..6]).unwrap().name, "app");
        assert_eq!(networks.list().unwrap().len(), 3);
        networks.remove(&app).unwrap();
        assert!(networks.get("app").unwrap().is_none());
    }
}
