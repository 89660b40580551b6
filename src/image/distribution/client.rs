//! A client for the OCI distribution API (`/v2/`): manifests and blobs,
//! with the registry's auth challenge answered (anonymous or credentialed
//! bearer tokens, basic auth), redirects followed without ever carrying
//! credentials to another host, retries for 429 and 5xx, and timeouts so a
//! dead server is an error, not a hang.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use ureq::http::Method;
use ureq::SendBody;

use super::auth::{parse_challenge, AuthFiles, Challenge, Credentials};
use super::registries_conf::Endpoint;
use crate::image::digest::Digest;
use crate::image::manifest::{ACCEPTED, MAX_MANIFEST_SIZE};
use crate::util::fs::FileRange;

const ATTEMPTS: u32 = 4;
const MAX_REDIRECTS: u32 = 5;

pub struct Registry {
    agent: ureq::Agent,
    auth: AuthFiles,
    /// The Authorization header that worked, per host and repository.
    authorization: Mutex<HashMap<String, String>>,
    /// The scheme each insecure host answered on.
    schemes: Mutex<HashMap<String, &'static str>>,
    /// What bearer tokens are asked for: the endpoint's repository with
    /// these actions, and pull access to these other repositories (the
    /// sources of cross-repository mounts).
    actions: &'static str,
    also_pulls: Vec<String>,
    /// Transfers slower than this many bytes a second, for this long, are
    /// given up.
    low_speed: (u64, Duration),
}

/// What a request sends.
pub(super) enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of `file` from `offset`: a blob, or one chunk of it.
    File {
        file: &'a std::fs::File,
        offset: u64,
        len: u64,
        /// Shows how far into the file the upload is.
        progress: Option<indicatif::ProgressBar>,
    },
}

/// A reader that moves a progress bar to how far into the file it is.
struct ShowingProgress<'a> {
    inner: FileRange<'a>,
    bar: Option<&'a indicatif::ProgressBar>,
}

impl Read for ShowingProgress<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(bar) = self.bar {
            bar.set_position(self.inner.position());
        }
        Ok(n)
    }
}

/// A transfer given up when, over any `time` (curl's --speed-time), fewer
/// than `limit` bytes a second (--speed-limit) came: a server that sends
/// one byte a second never trips a per-read timeout.
pub(super) struct LowSpeed<R> {
    inner: R,
    limit: u64,
    time: Duration,
    window_start: std::time::Instant,
    window_bytes: u64,
    host: String,
}

impl<R> LowSpeed<R> {
    fn new(inner: R, (limit, time): (u64, Duration), host: &str) -> LowSpeed<R> {
        LowSpeed {
            inner,
            limit,
            time,
            window_start: std::time::Instant::now(),
            window_bytes: 0,
            host: host.to_string(),
        }
    }
}

impl<R: Read> Read for LowSpeed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.window_bytes += n as u64;
        let elapsed = self.window_start.elapsed();
        if n > 0 && elapsed >= self.time {
            let wanted = self.limit.saturating_mul(elapsed.as_secs().max(1));
            if self.window_bytes < wanted {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "{} sent {} bytes in {} s, less than {} bytes a second: given up (see \
                         [registry] low_speed_limit and low_speed_time in config.toml)",
                        self.host,
                        self.window_bytes,
                        elapsed.as_secs(),
                        self.limit
                    ),
                ));
            }
            self.window_start = std::time::Instant::now();
            self.window_bytes = 0;
        }
        Ok(n)
    }
}

/// The name credentials are stored under for a host.
pub fn credential_key(host: &str) -> &str {
    match host {
        "registry-1.docker.io" | "index.docker.io" => "docker.io",
        other => other,
    }
}

fn transient(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

fn backoff(attempt: u32) {
    std::thread::sleep(Duration::from_millis(250 << attempt.min(4)));
}

pub(super) fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' | b'/' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Where a redirect from `url` leads: an absolute URL (never from HTTPS
/// down to plain HTTP), or a path on the same host.
pub(super) fn redirect_target(
    url: &str,
    response: &ureq::http::Response<ureq::Body>,
    endpoint: &Endpoint,
) -> Result<String> {
    let location = response
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .context("a redirect without a Location")?;
    if location.starts_with("http://") || location.starts_with("https://") {
        if location.starts_with("http://") && url.starts_with("https://") {
            bail!(
                "{} redirected from HTTPS to plain HTTP ({location}); refusing",
                endpoint.host
            );
        }
        Ok(location.to_string())
    } else if location.starts_with('/') {
        let scheme_host = &url[..url.find("://").unwrap() + 3 + host_of(url).len()];
        Ok(format!("{scheme_host}{location}"))
    } else if !location.is_empty() && !location.contains("://") {
        // Relative to the request's own path, without its query.
        let path = url.split(['?', '#']).next().unwrap_or(url);
        let base = &path[..path.rfind('/').map_or(path.len(), |i| i + 1)];
        Ok(format!("{base}{location}"))
    } else {
        bail!("unsupported redirect location {location:?}")
    }
}

fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?']).next().unwrap_or("")
}

/// rocker's HTTP settings, for registries and a build's ADD of a URL:
/// its user agent, and timeouts after which a connection, a response or a
/// stalled transfer is given up.
pub fn agent_config() -> ureq::config::ConfigBuilder<ureq::typestate::AgentScope> {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        // A transfer that stalls this long is dead.
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(format!("rocker/{}", env!("CARGO_PKG_VERSION")))
}

impl Registry {
    /// A client that pulls.
    pub fn new(auth: AuthFiles) -> Registry {
        Registry::with_access(auth, "pull", vec![])
    }

    /// A client that pushes, and may mount blobs from `mount_sources`
    /// (repositories on the same registry).
    pub fn for_push(auth: AuthFiles, mount_sources: Vec<String>) -> Registry {
        Registry::with_access(auth, "pull,push", mount_sources)
    }

    fn with_access(auth: AuthFiles, actions: &'static str, also_pulls: Vec<String>) -> Registry {
        let agent = agent_config()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        Registry {
            agent,
            auth,
            authorization: Mutex::new(HashMap::new()),
            schemes: Mutex::new(HashMap::new()),
            actions,
            also_pulls,
            low_speed: (1024, Duration::from_secs(30)),
        }
    }

    /// The base URL of an endpoint. HTTPS always; an `insecure` endpoint
    /// that does not speak TLS is retried over plain HTTP.
    fn base(&self, endpoint: &Endpoint) -> Result<String> {
        if !endpoint.insecure {
            return Ok(format!("https://{}", endpoint.host));
        }
        if let Some(scheme) = self.schemes.lock().unwrap().get(&endpoint.host) {
            return Ok(format!("{scheme}://{}", endpoint.host));
        }
        let scheme = match self
            .agent
            .get(format!("https://{}/v2/", endpoint.host))
            .call()
        {
            Ok(_) => "https",
            Err(_) => "http",
        };
        self.schemes
            .lock()
            .unwrap()
            .insert(endpoint.host.clone(), scheme);
        Ok(format!("{scheme}://{}", endpoint.host))
    }

    fn cache_key(endpoint: &Endpoint) -> String {
        format!("{}/{}", endpoint.host, endpoint.repository)
    }

    /// Gives up transfers slower than `limit` bytes a second for `time`
    /// (config.toml's [registry] low_speed_limit and low_speed_time).
    pub fn with_low_speed(mut self, limit: u64, time: Duration) -> Registry {
        self.low_speed = (limit, time);
        self
    }

    /// `/v2/<repository>/<path>` on the endpoint's registry.
    pub(super) fn url(&self, endpoint: &Endpoint, path: &str) -> Result<String> {
        Ok(format!(
            "{}/v2/{}/{path}",
            self.base(endpoint)?,
            endpoint.repository
        ))
    }

    /// GETs `/v2/<repository>/<path>`. Returns a 200 response; anything
    /// else is an error that says what the registry meant.
    fn get(
        &self,
        endpoint: &Endpoint,
        path: &str,
        accept: Option<&str>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let url = self.url(endpoint, path)?;
        let headers: Vec<(&str, String)> = accept
            .map(|accept| ("Accept", accept.to_string()))
            .into_iter()
            .collect();
        let response = self.request(endpoint, Method::GET, &url, &headers, &Payload::Empty)?;
        match response.status().as_u16() {
            200 => Ok(response),
            401 | 403 => bail!(
                "unauthorized: {} refused access to {} ({}); if it needs credentials, run: rocker login {}",
                endpoint.host,
                endpoint.repository,
                response.status().as_u16(),
                credential_key(&endpoint.host)
            ),
            404 => Err(anyhow!(NotFound(format!(
                "{}/{} {path}",
                endpoint.host, endpoint.repository
            )))),
            status => bail!("{} answered {status} for {url}", endpoint.host),
        }
    }

    /// Sends one request to `url`: answers the registry's auth challenge
    /// once, retries 429, 5xx and broken connections with backoff, and
    /// follows redirects for GET and HEAD. Returns the last response,
    /// whatever its status, for the caller to read.
    pub(super) fn request(
        &self,
        endpoint: &Endpoint,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        payload: &Payload<'_>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let follows_redirects = method == Method::GET || method == Method::HEAD;
        let mut url = url.to_string();
        let mut authenticated = false;
        let mut redirects = 0;
        let mut attempt = 0;
        loop {
            let response = match self.send(endpoint, &method, &url, headers, payload) {
                Ok(response) => response,
                Err(err)
                    if attempt + 1 < ATTEMPTS
                        && matches!(err, ureq::Error::Io(_) | ureq::Error::Timeout(_)) =>
                {
                    attempt += 1;
                    backoff(attempt);
                    continue;
                }
                Err(err) => return Err(connect_error(&endpoint.host, endpoint.insecure, err)),
            };
            let status = response.status().as_u16();
            match status {
                301 | 302 | 303 | 307 | 308 if follows_redirects => {
                    redirects += 1;
                    if redirects > MAX_REDIRECTS {
                        bail!("too many redirects from {url}");
                    }
                    url = redirect_target(&url, &response, endpoint)?;
                }
                401 if !authenticated && host_of(&url) == endpoint.host => {
                    let challenge = response
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok())
                        .with_context(|| {
                            format!("{} answered 401 without an auth challenge", endpoint.host)
                        })?;
                    self.authenticate(endpoint, challenge)?;
                    authenticated = true;
                }
                status if transient(status) && attempt + 1 < ATTEMPTS => {
                    attempt += 1;
                    backoff(attempt);
                }
                _ => return Ok(response),
            }
        }
    }

    /// One request, with the authorization this client holds for
    /// `endpoint`. Credentials go to the registry's own host only: a
    /// redirect to a CDN gets none.
    fn send(
        &self,
        endpoint: &Endpoint,
        method: &Method,
        url: &str,
        headers: &[(&str, String)],
        payload: &Payload<'_>,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let authorization = (host_of(url) == endpoint.host)
            .then(|| {
                self.authorization
                    .lock()
                    .unwrap()
                    .get(&Self::cache_key(endpoint))
                    .cloned()
            })
            .flatten();
        let mut request = ureq::http::Request::builder()
            .method(method.clone())
            .uri(url);
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        if let Some(value) = &authorization {
            request = request.header("Authorization", value);
        }
        // What the body reads, made afresh for each attempt so that a
        // retry sends the same bytes.
        let (mut reader, length): (Box<dyn Read + '_>, Option<u64>) = match payload {
            Payload::Empty if *method == Method::GET || *method == Method::HEAD => {
                (Box::new(std::io::empty()), None)
            }
            Payload::Empty => (Box::new(std::io::empty()), Some(0)),
            Payload::Bytes(bytes) => (Box::new(*bytes), Some(bytes.len() as u64)),
            Payload::File {
                file,
                offset,
                len,
                progress,
            } => (
                Box::new(ShowingProgress {
                    inner: FileRange::new(file, *offset, *len),
                    bar: progress.as_ref(),
                }),
                Some(*len),
            ),
        };
        match length {
            Some(length) => {
                let request = request.header("Content-Length", length);
                self.agent
                    .run(request.body(SendBody::from_reader(&mut reader))?)
            }
            None => self.agent.run(request.body(SendBody::none())?),
        }
    }

    /// Answers a challenge: a bearer token from the realm (with stored
    /// credentials when there are any, anonymous otherwise) or basic auth.
    fn authenticate(&self, endpoint: &Endpoint, challenge: &str) -> Result<()> {
        let key = credential_key(&endpoint.host);
        let credentials = self.auth.lookup(key, &endpoint.repository)?;
        let header = self.answer(endpoint, challenge, credentials.as_ref())?;
        self.authorization
            .lock()
            .unwrap()
            .insert(Self::cache_key(endpoint), header);
        Ok(())
    }

    fn answer(
        &self,
        endpoint: &Endpoint,
        challenge: &str,
        credentials: Option<&Credentials>,
    ) -> Result<String> {
        let key = credential_key(&endpoint.host);
        match parse_challenge(challenge)? {
            Challenge::Basic => match credentials {
                Some(credentials) => Ok(credentials.basic_header()),
                None => bail!(
                    "{} needs credentials: run rocker login {key}",
                    endpoint.host
                ),
            },
            Challenge::Bearer { realm, service, .. } => {
                self.bearer_token(endpoint, &realm, service.as_deref(), credentials)
            }
        }
    }

    /// A token for `endpoint`'s repository from the token service at
    /// `realm` (the credentials prove who asks; without them, anonymous).
    fn bearer_token(
        &self,
        endpoint: &Endpoint,
        realm: &str,
        service: Option<&str>,
        credentials: Option<&Credentials>,
    ) -> Result<String> {
        let key = credential_key(&endpoint.host);
        if realm.starts_with("http://") && !endpoint.insecure {
            bail!(
                "{} asks for tokens over plain HTTP ({realm}); refusing",
                endpoint.host
            );
        }
        // A realm may carry a query of its own.
        let separator = if realm.contains('?') { '&' } else { '?' };
        let mut url = format!(
            "{realm}{separator}scope={}",
            query_escape(&format!(
                "repository:{}:{}",
                endpoint.repository, self.actions
            ))
        );
        for source in self
            .also_pulls
            .iter()
            .filter(|s| **s != endpoint.repository)
        {
            url.push_str(&format!(
                "&scope={}",
                query_escape(&format!("repository:{source}:pull"))
            ));
        }
        if let Some(service) = service {
            url.push_str(&format!("&service={}", query_escape(service)));
        }
        let mut request = self.agent.get(&url);
        if let Some(credentials) = credentials {
            request = request.header("Authorization", credentials.basic_header());
        }
        let response = request
            .call()
            .map_err(|e| connect_error(host_of(realm), false, e))?;
        match response.status().as_u16() {
            200 => {}
            401 | 403 => {
                bail!("{key} rejected the stored credentials; run rocker login {key}")
            }
            status => bail!("the token service {realm} answered {status}"),
        }
        #[derive(serde::Deserialize)]
        struct Token {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = response
            .into_body()
            .into_with_config()
            .limit(1 << 20)
            .read_to_vec()?;
        let token: Token = serde_json::from_slice(&body).context("reading the token response")?;
        let token = token
            .token
            .or(token.access_token)
            .context("the token response has no token")?;
        Ok(format!("Bearer {token}"))
    }

    /// The manifest (or index) for a tag or digest, and its content type.
    pub fn manifest(
        &self,
        endpoint: &Endpoint,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>)> {
        let response = self.get(
            endpoint,
            &format!("manifests/{reference}"),
            Some(&ACCEPTED.join(", ")),
        )?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut bytes = vec![];
        let body = response
            .into_body()
            .into_with_config()
            .limit(MAX_MANIFEST_SIZE)
            .reader();
        LowSpeed::new(body, self.low_speed, &endpoint.host)
            .read_to_end(&mut bytes)
            .with_context(|| format!("reading the manifest {reference} from {}", endpoint.host))?;
        Ok((bytes, content_type))
    }

    /// A blob as a stream, capped at `size` bytes (the descriptor's).
    pub fn blob(
        &self,
        endpoint: &Endpoint,
        digest: &Digest,
        size: u64,
    ) -> Result<impl Read + Send + 'static> {
        let response = self.get(endpoint, &format!("blobs/{digest}"), None)?;
        let body = response.into_body().into_with_config().limit(size).reader();
        Ok(LowSpeed::new(body, self.low_speed, &endpoint.host))
    }

    /// Checks credentials against a registry, as `rocker login` does: the
    /// `/v2/` ping, then its challenge answered with them.
    pub fn check_login(&self, host: &str, insecure: bool, credentials: &Credentials) -> Result<()> {
        let endpoint = Endpoint {
            host: host.to_string(),
            repository: String::new(),
            insecure,
        };
        let ping = format!("{}/v2/", self.base(&endpoint)?);
        let response = self
            .agent
            .get(&ping)
            .call()
            .map_err(|e| connect_error(host, insecure, e))?;
        let header = match response.status().as_u16() {
            200 => return Ok(()),
            401 => {
                let challenge = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .context("401 without an auth challenge")?
                    .to_string();
                self.answer(&endpoint, &challenge, Some(credentials))?
            }
            status => bail!("{host} answered {status} to {ping}"),
        };
        let response = self
            .agent
            .get(&ping)
            .header("Authorization", header)
            .call()
            .map_err(|e| connect_error(host, insecure, e))?;
        match response.status().as_u16() {
            200 => Ok(()),
            status => bail!("{host} rejected the credentials ({status})"),
        }
    }
}

/// The registry said 404: the repository, tag or blob does not exist.
#[derive(Debug, thiserror::Error)]
#[error("not found: {0}")]
pub struct NotFound(pub String);

fn connect_error(host: &str, insecure: bool, err: ureq::Error) -> anyhow::Error {
    let hint = if insecure {
        String::new()
    } else {
        format!(
            "; if {host} is a local registry without TLS, mark it insecure = true in \
             $XDG_CONFIG_HOME/containers/registries.conf"
        )
    };
    anyhow!("cannot reach {host}: {err}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(host_of("https://reg:5000/v2/x"), "reg:5000");
        assert_eq!(host_of("http://cdn.example/blob?sig=1"), "cdn.example");
        assert_eq!(
            query_escape("repository:library/alpine:pull"),
            "repository:library/alpine:pull"
        );
        assert_eq!(query_escape("a b&c"), "a%20b%26c");
        assert_eq!(credential_key("registry-1.docker.io"), "docker.io");
        assert!(transient(503) && transient(429) && !transient(404));
    }

    #[test]
    fn a_tls_registry_naming_a_plain_http_token_realm_gets_no_credentials() {
        let registry = Registry::new(AuthFiles::new(
            "/nonexistent/auth.json".into(),
            std::path::Path::new("/nonexistent"),
        ));
        let endpoint = Endpoint {
            host: "registry.example".into(),
            repository: "team/app".into(),
            insecure: false,
        };
        let credentials = Credentials {
            username: "alice".into(),
            password: "s3cret".into(),
        };
        let err = registry
            .bearer_token(
                &endpoint,
                "http://127.0.0.2:5098/token",
                None,
                Some(&credentials),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("over plain HTTP") && err.contains("refusing"),
            "{err}"
        );
    }
}
