//! The peers' part of a container's /etc/hosts: after what the container's
//! monitor wrote, a section per network, which the keeper rewrites as
//! containers join and leave it. The file is bind-mounted into the
//! container, so it is rewritten in place (the mount holds the inode, a
//! rename would not be seen), as docker rewrites its own. Lines a
//! container adds after a section count as the section's.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context, Result};

/// A section's first line, before the network's name.
const SECTION: &str = "# rocker: the other containers on ";

/// `text` with the section of `network` replaced by a line per peer: its
/// address, then its names (none without peers).
pub fn with_peers(text: &str, network: &str, peers: &[(Ipv4Addr, &[String])]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_section = false;
    for line in text.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix(SECTION) {
            in_section = name.trim_end() == network;
        }
        if !in_section {
            out.push_str(line);
        }
    }
    if peers.is_empty() {
        return out;
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!("{SECTION}{network}\n"));
    for (address, names) in peers {
        out.push_str(&format!("{address}\t{}\n", names.join(" ")));
    }
    out
}

/// Writes `content` over the file at `path`, keeping its inode.
pub fn rewrite_in_place(path: &Path, content: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    file.write_all(content.as_bytes())
        .and_then(|()| file.set_len(content.len() as u64))
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_networks_section_is_replaced_and_removed_whole() {
        let base = "127.0.0.1\tlocalhost\n10.89.0.10\tweb\n";
        let db = ["db".to_string(), "database".to_string()];
        let cache = ["cache".to_string()];
        let text = with_peers(base, "app", &[(Ipv4Addr::new(10, 89, 0, 11), &db)]);
        assert!(text.ends_with("app\n10.89.0.11\tdb database\n"), "{text}");
        let both = with_peers(&text, "back", &[(Ipv4Addr::new(10, 89, 1, 10), &cache)]);
        let replaced = with_peers(&both, "app", &[(Ipv4Addr::new(10, 89, 0, 12), &db)]);
        assert!(!replaced.contains("10.89.0.11"), "{replaced}");
        assert!(replaced.contains("10.89.1.10\tcache\n"), "{replaced}");
        assert!(replaced.contains("10.89.0.12\tdb database\n"), "{replaced}");
        let gone = with_peers(&with_peers(&replaced, "app", &[]), "back", &[]);
        assert_eq!(gone, base);
    }
}
