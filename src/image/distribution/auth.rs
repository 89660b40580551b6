//! Registry credentials: the ecosystem's files (podman's
//! `$XDG_RUNTIME_DIR/containers/auth.json`, then docker's
//! `~/.docker/config.json`), and the `WWW-Authenticate` challenge.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::util::fs::read_json;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    /// Everything else (credHelpers, ...) is kept as it is when we rewrite.
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

/// The keys an auth file may use for `registry`: docker's legacy Hub URL
/// among them.
fn keys_for(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == "docker.io" {
        keys.extend(
            [
                "https://index.docker.io/v1/",
                "index.docker.io",
                "registry-1.docker.io",
            ]
            .map(String::from),
        );
    }
    keys
}

fn decode(entry: &AuthEntry) -> Option<Credentials> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(entry.auth.as_ref()?.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (username, password) = text.split_once(':')?;
    Some(Credentials {
        username: username.to_string(),
        password: password.to_string(),
    })
}

fn read_file(path: &Path) -> Result<Option<AuthFile>> {
    read_json(path)
}

/// Where rocker reads and writes credentials.
#[derive(Debug, Clone)]
pub struct AuthFiles {
    /// `$XDG_RUNTIME_DIR/containers/auth.json`: read first, written by login.
    pub primary: PathBuf,
    /// `~/.docker/config.json`: read only.
    pub docker: PathBuf,
}

impl AuthFiles {
    pub fn new(primary: PathBuf, home: &Path) -> AuthFiles {
        AuthFiles {
            primary,
            docker: home.join(".docker/config.json"),
        }
    }

    /// Stored credentials for `registry` (`docker.io`, `host:port`), also
    /// accepting an entry for `registry/repository` prefixes as podman does.
    pub fn lookup(&self, registry: &str, repository: &str) -> Result<Option<Credentials>> {
        for path in [&self.primary, &self.docker] {
            let Some(file) = read_file(path)? else {
                continue;
            };
            // Most specific first: registry/a/b, registry/a, then registry.
            let mut candidates = vec![];
            let parts: Vec<&str> = repository.split('/').collect();
            for n in (1..=parts.len()).rev() {
                candidates.push(format!("{registry}/{}", parts[..n].join("/")));
            }
            candidates.extend(keys_for(registry));
            for key in candidates {
                if let Some(credentials) = file.auths.get(&key).and_then(decode) {
                    return Ok(Some(credentials));
                }
            }
        }
        Ok(None)
    }

    /// Stores credentials for `registry` in the primary file, mode 0600,
    /// atomically, keeping every other entry.
    pub fn store(&self, registry: &str, credentials: &Credentials) -> Result<()> {
        let mut file = read_file(&self.primary)?.unwrap_or_default();
        let raw = format!("{}:{}", credentials.username, credentials.password);
        let entry = file.auths.entry(registry.to_string()).or_default();
        entry.auth = Some(base64::engine::general_purpose::STANDARD.encode(raw));
        self.write(&file)
    }

    /// Removes `registry` from the primary file; false when it had none.
    pub fn remove(&self, registry: &str) -> Result<bool> {
        let Some(mut file) = read_file(&self.primary)? else {
            return Ok(false);
        };
        let before = file.auths.len();
        for key in keys_for(registry) {
            file.auths.remove(&key);
        }
        if file.auths.len() == before {
            return Ok(false);
        }
        self.write(&file)?;
        Ok(true)
    }

    fn write(&self, file: &AuthFile) -> Result<()> {
        let text = serde_json::to_string_pretty(file)?;
        crate::util::fs::write_atomic(&self.primary, text.as_bytes(), 0o600)
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
pub fn parse_challenge(header: &str) -> Result<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Ok(Challenge::Basic),
        "bearer" => {
            let Some(realm) = params.get("realm") else {
                bail!("the registry's Bearer challenge has no realm: {header:?}");
            };
            Ok(Challenge::Bearer {
                realm: realm.clone(),
                service: params.get("service").cloned(),
                scope: params.get("scope").cloned(),
            })
        }
        _ => bail!("unsupported authentication scheme in {header:?}"),
    }
}

/// `key="value", key2=value2` (values may hold commas inside quotes).
fn parse_params(text: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let mut rest = text.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remainder) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (&quoted[..end], &quoted[end + 1..]),
                None => (quoted, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        params.insert(key, value.to_string());
        rest = remainder.trim_start().trim_start_matches(',');
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn challenges() {
        let hub = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        assert_eq!(
            parse_challenge(hub).unwrap(),
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull".into()),
            }
        );
        let with_comma = r#"Bearer realm="https://ghcr.io/token", service="ghcr.io",scope="repository:a/b:pull,push""#;
        let Challenge::Bearer { scope, .. } = parse_challenge(with_comma).unwrap() else {
            panic!()
        };
        assert_eq!(scope.as_deref(), Some("repository:a/b:pull,push"));
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic
        );
        assert!(parse_challenge("Bearer service=x").is_err());
        assert!(parse_challenge("Negotiate abc").is_err());
    }

    #[test]
    fn files_round_trip_and_lookup_order() {
        let dir = ScratchDir::new("auth");
        let files = AuthFiles::new(dir.join("run/containers/auth.json"), &dir.join("home"));
        std::fs::create_dir_all(dir.join("home/.docker")).unwrap();
        let docker_auth = base64::engine::general_purpose::STANDARD.encode("hubuser:hubpass");
        std::fs::write(
            &files.docker,
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{docker_auth}"}}}},"credsStore":"x"}}"#),
        )
        .unwrap();
        let hub = files
            .lookup("docker.io", "library/alpine")
            .unwrap()
            .unwrap();
        assert_eq!(hub.username, "hubuser");

        let creds = Credentials {
            username: "me".into(),
            password: "p:w".into(),
        };
        files.store("localhost:5000", &creds).unwrap();
        files.store("docker.io", &creds).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files.primary)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            files.lookup("localhost:5000", "app").unwrap(),
            Some(creds.clone())
        );
        // The primary file wins over docker's.
        assert_eq!(
            files.lookup("docker.io", "library/alpine").unwrap(),
            Some(creds.clone())
        );
        assert!(files.remove("localhost:5000").unwrap());
        assert!(!files.remove("localhost:5000").unwrap());
        assert_eq!(files.lookup("localhost:5000", "app").unwrap(), None);
    }
}
