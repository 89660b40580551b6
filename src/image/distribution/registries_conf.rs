//! containers-registries.conf(5), version 2: which hosts to contact for a
//! reference, in which order, and whether plain HTTP is allowed. An existing
//! podman or skopeo setup works unchanged.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::image::reference::Reference;
use crate::util::fs::read_if_present;

#[derive(Debug, Default, Deserialize)]
struct ConfFile {
    #[serde(default)]
    registry: Vec<RegistryEntry>,
}

#[derive(Debug, Clone, Deserialize)]
struct RegistryEntry {
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror: Vec<MirrorEntry>,
}

#[derive(Debug, Clone, Deserialize)]
struct MirrorEntry {
    location: String,
    #[serde(default)]
    insecure: bool,
}

/// One place to fetch a reference from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host (and port) to contact, e.g. `registry-1.docker.io`.
    pub host: String,
    /// The repository path on that host.
    pub repository: String,
    /// Plain HTTP allowed (`insecure = true`).
    pub insecure: bool,
}

/// The parsed settings, and the file they came from (for messages).
#[derive(Debug, Default)]
pub struct Registries {
    entries: Vec<RegistryEntry>,
    source: Option<PathBuf>,
}

impl Registries {
    /// `$XDG_CONFIG_HOME/containers/registries.conf` when it exists (it
    /// replaces the system file, as for podman), else
    /// `/etc/containers/registries.conf`, else none.
    pub fn load(config_home: &Path) -> Result<Registries> {
        let user = config_home.join("containers/registries.conf");
        let system = Path::new("/etc/containers/registries.conf");
        for path in [user.as_path(), system] {
            if let Some(text) = read_if_present(path)? {
                return Registries::parse(&text, Some(path.to_path_buf()));
            }
        }
        Ok(Registries::default())
    }

    pub fn parse(text: &str, source: Option<PathBuf>) -> Result<Registries> {
        let name = source
            .as_ref()
            .map_or("registries.conf".into(), |p| p.display().to_string());
        let file: ConfFile = toml::from_str(text).with_context(|| format!("parsing {name}"))?;
        for entry in &file.registry {
            if entry.prefix.is_none() && entry.location.is_none() {
                bail!("{name}: a [[registry]] needs a prefix or a location");
            }
        }
        Ok(Registries {
            entries: file.registry,
            source,
        })
    }

    /// The entry whose prefix matches `name` (`registry/repository`) best:
    /// the longest, matching whole path components; `*.example.com` matches
    /// any subdomain host.
    fn entry_for(&self, name: &str) -> Option<(&RegistryEntry, String)> {
        self.entries
            .iter()
            .filter_map(|entry| {
                let prefix = entry.prefix.as_deref().or(entry.location.as_deref())?;
                let matched = if let Some(domain) = prefix.strip_prefix("*.") {
                    let host = name.split('/').next().unwrap_or("");
                    host.ends_with(&format!(".{domain}"))
                        .then(|| host.to_string())
                } else {
                    // Whole components only; a prefix longer than the name
                    // simply does not match.
                    let rest = name.strip_prefix(prefix)?;
                    (rest.is_empty() || rest.starts_with(['/', ':', '@']))
                        .then(|| prefix.to_string())
                };
                matched.map(|m| (entry, m))
            })
            .max_by_key(|(_, matched)| matched.len())
    }

    /// Where to fetch `reference` from: mirrors in order, then the registry
    /// itself (its `location`, if rewritten).
    pub fn endpoints(&self, reference: &Reference) -> Result<Vec<Endpoint>> {
        let name = reference.name();
        let Some((entry, matched)) = self.entry_for(&name) else {
            return Ok(vec![direct(
                &reference.registry,
                &reference.repository,
                false,
            )]);
        };
        if entry.blocked {
            let source = self
                .source
                .as_ref()
                .map_or("registries.conf".into(), |p| p.display().to_string());
            bail!("{name} is blocked by {source} (blocked = true)");
        }
        let rest = &name[matched.len()..];
        let rewrite = |location: &str, insecure: bool| {
            let full = format!("{location}{rest}");
            let (host, repository) = full.split_once('/').unwrap_or((&full, ""));
            direct(host, repository.trim_start_matches('/'), insecure)
        };
        let mut endpoints: Vec<Endpoint> = entry
            .mirror
            .iter()
            .map(|m| rewrite(&m.location, m.insecure))
            .collect();
        let location = entry.location.as_deref().unwrap_or(&matched);
        // A wildcard entry keeps the reference's own host.
        let location = if location.starts_with("*.") {
            &matched
        } else {
            location
        };
        endpoints.push(rewrite(location, entry.insecure));
        Ok(endpoints)
    }
}

impl Registries {
    /// Where a push of `reference` goes: the registry itself (after any
    /// rewrite of its location), never a mirror, which serves pulls only.
    pub fn push_endpoint(&self, reference: &Reference) -> Result<Endpoint> {
        let mut endpoints = self.endpoints(reference)?;
        Ok(endpoints
            .pop()
            .expect("registries.conf yields at least one endpoint"))
    }
}

/// Docker Hub's API lives on another host than its name.
fn direct(host: &str, repository: &str, insecure: bool) -> Endpoint {
    let host = match host {
        "docker.io" => "registry-1.docker.io",
        other => other,
    };
    Endpoint {
        host: host.to_string(),
        repository: repository.to_string(),
        insecure,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONF: &str = r#"
unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "example.com/foo"
location = "internal.example.com/bar"
insecure = true

[[registry.mirror]]
location = "mirror.local:5000/cache"
insecure = true

[[registry.mirror]]
location = "mirror2.local"

[[registry]]
location = "127.0.0.1:5000"
insecure = true

[[registry]]
prefix = "evil.example"
blocked = true

[[registry]]
prefix = "*.corp.example"
insecure = true
"#;

    fn endpoints(reference: &str) -> Result<Vec<Endpoint>> {
        let conf = Registries::parse(CONF, Some("/etc/containers/registries.conf".into())).unwrap();
        conf.endpoints(&Reference::parse(reference).unwrap())
    }

    fn ep(host: &str, repository: &str, insecure: bool) -> Endpoint {
        direct(host, repository, insecure)
    }

    #[test]
    fn mirrors_first_then_the_rewritten_location() {
        assert_eq!(
            endpoints("example.com/foo/app:1").unwrap(),
            vec![
                ep("mirror.local:5000", "cache/app", true),
                ep("mirror2.local", "app", false),
                ep("internal.example.com", "bar/app", true),
            ]
        );
    }

    #[test]
    fn a_push_goes_to_the_rewritten_location_never_a_mirror() {
        let conf = Registries::parse(CONF, None).unwrap();
        let push = |r: &str| conf.push_endpoint(&Reference::parse(r).unwrap());
        assert_eq!(
            push("example.com/foo/app:1").unwrap(),
            ep("internal.example.com", "bar/app", true)
        );
        assert_eq!(
            push("quay.io/team/app").unwrap(),
            ep("quay.io", "team/app", false)
        );
    }

    #[test]
    fn a_prefix_longer_than_the_name_does_not_match_or_panic() {
        let registries = Registries::parse(
            "[[registry]]\nlocation = \"registry.fedoraproject.org\"\n\n\
             [[registry]]\nprefix = \"docker.io/library/alpine-but-longer\"\nlocation = \"x.example\"\n",
            None,
        )
        .unwrap();
        for name in ["docker.io/library/alpine", "a", "", "registry.fedora"] {
            assert!(registries.entry_for(name).is_none(), "{name}");
        }
        let (_, matched) = registries
            .entry_for("registry.fedoraproject.org/f39")
            .unwrap();
        assert_eq!(matched, "registry.fedoraproject.org");
    }

    #[test]
    fn matching_rules() {
        assert_eq!(
            endpoints("127.0.0.1:5000/app").unwrap(),
            vec![ep("127.0.0.1:5000", "app", true)]
        );
        // A prefix matches whole components only.
        assert_eq!(
            endpoints("example.com/foobar/app").unwrap(),
            vec![ep("example.com", "foobar/app", false)]
        );
        assert_eq!(
            endpoints("alpine").unwrap(),
            vec![ep("registry-1.docker.io", "library/alpine", false)]
        );
        assert_eq!(
            endpoints("reg.corp.example/team/app").unwrap(),
            vec![ep("reg.corp.example", "team/app", true)]
        );
        let err = endpoints("evil.example/app").unwrap_err().to_string();
        assert!(
            err.contains("blocked by /etc/containers/registries.conf"),
            "{err}"
        );
    }

    #[test]
    fn broken_files_name_themselves() {
        let err = Registries::parse("[[registry]]\ninsecure = true\n", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs a prefix or a location"), "{err}");
        let err = format!(
            "{:#}",
            Registries::parse("[[registry", Some("/x.conf".into())).unwrap_err()
        );
        assert!(err.contains("/x.conf"), "{err}");
    }
}
