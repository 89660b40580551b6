//! Image references, normalized the way docker does: `alpine` is
//! `docker.io/library/alpine:latest`, `user/app` is `docker.io/user/app`,
//! the first component is a registry when it has a `.` or `:` or is
//! `localhost`.

use std::fmt;

use anyhow::Result;

use super::digest::Digest;

pub const DOCKER_HUB: &str = "docker.io";

const FORM: &str = "expected [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST], e.g. alpine, \
                    docker.io/library/alpine:3.20 or localhost:5000/app@sha256:...";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `docker.io`, `ghcr.io`, `localhost:5000`...
    pub registry: String,
    /// `library/alpine`, `org/app`...
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn valid_component(component: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid_separator = |s: &str| matches!(s, "." | "_" | "__") || s.chars().all(|c| c == '-');
    if !component.starts_with(alnum) || !component.ends_with(alnum) {
        return false;
    }
    let mut separator = String::new();
    for c in component.chars() {
        if alnum(c) {
            if !separator.is_empty() && !valid_separator(&separator) {
                return false;
            }
            separator.clear();
        } else if matches!(c, '.' | '_' | '-') {
            separator.push(c);
        } else {
            return false;
        }
    }
    true
}

fn valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_registry(registry: &str) -> bool {
    let (host, port) = match registry.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let host_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    host_ok
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

impl Reference {
    pub fn parse(text: &str) -> Result<Reference> {
        let bad = |why: &str| anyhow::anyhow!("invalid image reference {text:?}: {why}; {FORM}");
        if text.is_empty() || text.len() > 4096 {
            return Err(bad("empty or too long"));
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (
                rest,
                Some(Digest::parse(digest).map_err(|e| bad(&e.to_string()))?),
            ),
            None => (text, None),
        };
        // A ':' after the last '/' starts the tag ("localhost:5000/app" has none).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(bad(&format!("invalid tag {tag:?}")));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if !valid_registry(&registry) {
            return Err(bad(&format!("invalid registry {registry:?}")));
        }
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(bad("repository names must be lowercase"));
        }
        if !repository.split('/').all(valid_component) {
            return Err(bad(&format!("invalid repository name {repository:?}")));
        }
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        let tag = match (tag, &digest) {
            (Some(tag), _) => Some(tag.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as docker shows it: `alpine:3.20` for
    /// `docker.io/library/alpine:3.20`, `user/app:1` for Docker Hub's
    /// `docker.io/user/app:1`, and in full elsewhere.
    pub fn familiar(&self) -> String {
        let full = self.to_string();
        let hub = format!("{DOCKER_HUB}/");
        match full.strip_prefix(&hub) {
            Some(rest) => rest.strip_prefix("library/").unwrap_or(rest).to_string(),
            None => full,
        }
    }

    /// What to ask the registry for: the digest when given, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => "latest".to_string(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_names_drop_docker_hubs_prefixes() {
        let familiar = |text: &str| Reference::parse(text).unwrap().familiar();
        assert_eq!(familiar("alpine"), "alpine:latest");
        assert_eq!(familiar("docker.io/user/app:1"), "user/app:1");
        assert_eq!(familiar("localhost:5000/app:2"), "localhost:5000/app:2");
    }

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalization_table() {
        let with_digest = format!("docker.io/library/alpine@{D}");
        let tag_and_digest = format!("localhost:5000/app:v1@{D}");
        let cases: Vec<(String, String)> = vec![
            ("alpine".into(), "docker.io/library/alpine:latest".into()),
            ("alpine:3.20".into(), "docker.io/library/alpine:3.20".into()),
            ("user/app".into(), "docker.io/user/app:latest".into()),
            (
                "docker.io/alpine".into(),
                "docker.io/library/alpine:latest".into(),
            ),
            (
                "index.docker.io/library/alpine".into(),
                "docker.io/library/alpine:latest".into(),
            ),
            ("ghcr.io/org/app:1.2".into(), "ghcr.io/org/app:1.2".into()),
            ("localhost/app".into(), "localhost/app:latest".into()),
            (
                "localhost:5000/app".into(),
                "localhost:5000/app:latest".into(),
            ),
            (
                "127.0.0.1:5000/a/b/c:t".into(),
                "127.0.0.1:5000/a/b/c:t".into(),
            ),
            (
                "quay.io/a/b-c__d.e".into(),
                "quay.io/a/b-c__d.e:latest".into(),
            ),
            (format!("alpine@{D}"), with_digest),
            (format!("localhost:5000/app:v1@{D}"), tag_and_digest),
        ];
        for (input, want) in cases {
            let got = Reference::parse(&input).unwrap().to_string();
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn parts() {
        let r = Reference::parse("localhost:5000/team/app:v2").unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "team/app");
        assert_eq!(r.manifest_reference(), "v2");
        let r = Reference::parse(&format!("app@{D}")).unwrap();
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.tag, None);
    }

    #[test]
    fn bad_references_show_the_form() {
        for bad in [
            "",
            "Alpine",
            "alpine:",
            "alpine:bad/tag",
            "alpine@sha256:../x",
            "a//b",
            "-app",
            "app-",
            "app..x",
            "app:tag:more",
            "reg:99999999/app",
            "app/",
        ] {
            let err = Reference::parse(bad).unwrap_err().to_string();
            assert!(err.contains("expected [REGISTRY"), "{bad}: {err}");
        }
    }
}
