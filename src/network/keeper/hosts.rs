//! The peers' part of a container's /etc/hosts: after what the container's
//! monitor wrote, a section the keeper rewrites as containers join and
//! leave the network. The file is bind-mounted into the container, so it
//! is rewritten in place (the mount holds the inode, a rename would not be
//! seen), as docker rewrites its own.

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::{Context, Result};

const SECTION: &str = "# rocker: the other containers of the network\n";

/// The file without the peers' section.
pub fn without_peers(text: &str) -> &str {
    text.split_once(SECTION).map_or(text, |(base, _)| base)
}

/// `base` and a line per peer: its address, then its names.
pub fn with_peers(base: &str, peers: &[(Ipv4Addr, &[String])]) -> String {
    let mut text = base.to_string();
    if peers.is_empty() {
        return text;
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(SECTION);
    for (address, names) in peers {
        text.push_str(&format!("{address}\t{}\n", names.join(" ")));
    }
    text
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
    fn the_section_is_replaced_and_removed_whole() {
        let base = "127.0.0.1\tlocalhost\n10.89.0.10\tweb\n";
        let names = ["db".to_string(), "database".to_string()];
        let text = with_peers(base, &[(Ipv4Addr::new(10, 89, 0, 11), &names)]);
        assert!(text.ends_with("10.89.0.11\tdb database\n"), "{text}");
        assert_eq!(without_peers(&text), base);
        assert_eq!(with_peers(without_peers(&text), &[]), base);
    }
}
