//! What `ps` lists of each container: the part of its record that the
//! table, the filters and the templates show, with its status and state,
//! read in one pass over the store.
//!
//! The summary is read from the same config.json as the whole record;
//! serde passes over the fields it lacks (the environment, capabilities,
//! limits) without building them, which was most of the work of reading
//! thousands of records.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use serde::Deserialize;

use super::record::{Containers, Identified, MountRecord, State, Status};
use crate::network::ports::PortMapping;
use crate::network::NetworkMode;

/// A container's record as `ps` needs it; each field as in
/// `ContainerRecord`.
#[derive(Debug, Deserialize)]
pub struct ContainerSummary {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: Option<String>,
    pub created: u64,
    pub command: Vec<String>,
    #[serde(deserialize_with = "crate::util::as_text::deserialize")]
    pub network: NetworkMode,
    pub ports: Vec<PortMapping>,
    pub mounts: Vec<MountRecord>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Identified for ContainerSummary {
    fn id(&self) -> &str {
        &self.id
    }
}

/// One container in the listing.
pub struct Listed {
    pub summary: ContainerSummary,
    pub status: Status,
    pub state: State,
}

impl Containers {
    /// Every container with a record, oldest first, with its status and
    /// state: each container's files read by one worker, several workers
    /// for a large store.
    pub fn listing(&self) -> Result<Vec<Listed>> {
        let mut listed = self.read_each(|dir: &Path| {
            let Some(summary) = self.read_record_of::<ContainerSummary>(dir)? else {
                return Ok(None);
            };
            let (status, state) = self.status_and_state(&summary.id);
            Ok(Some(Listed {
                summary,
                status,
                state,
            }))
        })?;
        listed.sort_by(|a, b| {
            let (a, b) = (&a.summary, &b.summary);
            (a.created, &a.id).cmp(&(b.created, &b.id))
        });
        Ok(listed)
    }
}

#[cfg(test)]
mod tests {
    use super::ContainerSummary;

    /// Guards the two against drifting apart: every field a summary has
    /// reads back from a whole record as written, with its value.
    #[test]
    fn a_whole_record_reads_as_its_summary() {
        let record = serde_json::json!({
            "id": "ab".repeat(32), "name": "web", "image": "docker.io/library/nginx:1",
            "image_id": "sha256:12", "created": 7, "command": ["nginx", "-g"],
            "env": ["A=1"], "working_dir": "/", "user": "0:0", "hostname": "h",
            "tty": false, "network": "slirp4netns", "ip_address": "10.0.2.100",
            "ports": [{"host_ip": "0.0.0.0", "host_port": 8080, "container_port": 80,
                       "protocol": "tcp"}],
            "mounts": [{"kind": "volume", "name": "data", "source": null,
                        "destination": "/data", "read_only": false}],
            "stop_signal": "SIGTERM", "auto_remove": false, "detached": true,
            "rootfs_mode": "overlay", "labels": {"tier": "front"}, "restart": "no"
        });
        let whole: crate::container::record::ContainerRecord =
            serde_json::from_value(record.clone()).expect("a whole record");
        let summary: ContainerSummary = serde_json::from_value(record).expect("its summary");
        assert_eq!(summary.id, whole.id);
        assert_eq!(summary.name, whole.name);
        assert_eq!(summary.image, whole.image);
        assert_eq!(summary.image_id, whole.image_id);
        assert_eq!(summary.created, whole.created);
        assert_eq!(summary.command, whole.command);
        assert_eq!(summary.network.to_string(), whole.network.to_string());
        assert_eq!(summary.ports, whole.ports);
        assert_eq!(summary.mounts.len(), whole.mounts.len());
        assert_eq!(summary.mounts[0].name, whole.mounts[0].name);
        assert_eq!(summary.labels, whole.labels);
        // And back: the summary's fields are all in what a record writes.
        let written = serde_json::to_value(&whole).unwrap();
        for field in [
            "id", "name", "image", "image_id", "created", "command", "network", "ports", "mounts",
            "labels",
        ] {
            assert!(written.get(field).is_some(), "a record writes {field}");
        }
    }
}
