//! The networks `network connect` gave a container besides the one it was
//! made on, in `connected.json` beside its record: its monitor joins them
//! again at each start, as docker's containers keep theirs.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::util::fs::{read_json, write_atomic};

const FILE: &str = "connected.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    pub network: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
}

/// The connections of the container whose store dir is `dir`.
pub fn read(dir: &Path) -> Result<Vec<Connection>> {
    let path = dir.join(FILE);
    Ok(read_json(&path)
        .with_context(|| format!("reading {}", path.display()))?
        .unwrap_or_default())
}

/// Replaces them (the caller holds the containers lock).
pub fn write(dir: &Path, connections: &[Connection]) -> Result<()> {
    let path = dir.join(FILE);
    write_atomic(&path, &serde_json::to_vec_pretty(connections)?, 0o600)
        .with_context(|| format!("writing {}", path.display()))
}
