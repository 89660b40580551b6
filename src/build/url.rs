//! ADD of a URL: the file fetched, over the host's own connections (as a
//! pull is), each time the step is reached, into a directory that the
//! step then copies from. Its digest is checked when `--checksum` gives
//! one; the cache compares what was fetched, so an unchanged file reuses
//! the step's layer.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest as _, Sha256};

pub fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// The name the fetched file gets: the URL path's last part (docker's
/// choice), without query or fragment.
pub fn file_name(url: &str) -> Result<String> {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = without_scheme.split(['?', '#']).next().unwrap_or_default();
    let name = path
        .split_once('/')
        .map(|(_, path)| path)
        .unwrap_or_default()
        .rsplit('/')
        .find(|part| !part.is_empty())
        .unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." {
        bail!("ADD {url}: the URL names no file; give the destination a file name");
    }
    Ok(name.to_string())
}

/// Fetches `url` into `dir` (as `file_name(url)`, mode 0600 as docker
/// makes it), at most `limit` bytes, checked against `checksum`
/// (`sha256:HEX`) when given. Returns the file's path.
pub fn fetch(url: &str, dir: &Path, checksum: Option<&str>, limit: u64) -> Result<PathBuf> {
    let name = file_name(url)?;
    let agent = crate::image::distribution::client::agent_config()
        .max_redirects(10)
        .build()
        .new_agent();
    let response = agent
        .get(url)
        .call()
        .with_context(|| format!("fetching {url} for ADD"))?;
    let path = dir.join(&name);
    let mut file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut body = response
        .into_body()
        .into_with_config()
        .limit(limit)
        .reader();
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = body
            .read(&mut buffer)
            .with_context(|| format!("fetching {url} for ADD"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        std::io::Write::write_all(&mut file, &buffer[..n])
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let digest = format!("sha256:{:x}", hasher.finalize());
    if let Some(wanted) = checksum {
        if wanted != digest {
            bail!("ADD {url}: the file's digest is {digest}, not the --checksum {wanted}");
        }
    }
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_names_its_file() {
        assert_eq!(
            file_name("https://example.com/dl/tool-1.2.tar.gz?sig=x").unwrap(),
            "tool-1.2.tar.gz"
        );
        assert_eq!(file_name("http://127.0.0.1:8000/a/b/").unwrap(), "b");
        assert!(file_name("https://example.com/").is_err());
        assert!(file_name("https://example.com").is_err());
        assert!(is_url("https://x/y") && !is_url("site/x"));
    }
}
