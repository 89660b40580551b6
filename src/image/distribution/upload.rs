//! The push half of the distribution API: ask whether a repository has a
//! blob (HEAD), mount it from another repository of the same registry,
//! upload it in one PUT or in PATCH chunks (resuming from what the
//! registry says it has after a failed chunk), and put the manifest.

use std::fs::File;

use anyhow::{bail, Context, Result};
use ureq::http::Method;

use super::client::{credential_key, query_escape, redirect_target, Payload, Registry};
use super::registries_conf::Endpoint;
use crate::image::digest::Digest;

/// Blobs up to this size go in one PUT; larger ones in chunks of it, so a
/// broken connection costs at most one chunk.
pub const CHUNK_SIZE: u64 = 32 << 20;

/// What a blob upload came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uploaded {
    /// The repository had it already.
    Present,
    /// Mounted from another repository: no bytes sent.
    Mounted,
    Sent,
}

/// Where a blob's bytes come from.
pub enum BlobSource<'a> {
    Bytes(&'a [u8]),
    File(&'a File),
}

impl BlobSource<'_> {
    fn payload(
        &self,
        offset: u64,
        len: u64,
        progress: Option<&'_ indicatif::ProgressBar>,
    ) -> Payload<'_> {
        match self {
            BlobSource::Bytes(bytes) => {
                Payload::Bytes(&bytes[offset as usize..(offset + len) as usize])
            }
            BlobSource::File(file) => Payload::File {
                file,
                offset,
                len,
                progress: progress.cloned(),
            },
        }
    }
}

/// The registry's own words for a refusal: the `errors` of its JSON body
/// (`DENIED: requested access to the resource is denied`), else the status.
fn refusal(
    response: ureq::http::Response<ureq::Body>,
    what: &str,
    endpoint: &Endpoint,
) -> anyhow::Error {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<RegistryError>,
    }
    #[derive(serde::Deserialize)]
    struct RegistryError {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .into_with_config()
        .limit(1 << 16)
        .read_to_vec()
        .unwrap_or_default();
    let reason = match serde_json::from_slice::<Errors>(&body) {
        Ok(errors) if !errors.errors.is_empty() => errors
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(300)
            .collect(),
    };
    let mut message = format!(
        "{} refused {what} for {} ({status}{}{reason})",
        endpoint.host,
        endpoint.repository,
        if reason.is_empty() { "" } else { ": " }
    );
    if status == 401 || status == 403 {
        message.push_str(&format!(
            "; if you may push there, log in first: rocker login {}",
            credential_key(&endpoint.host)
        ));
    }
    anyhow::anyhow!(message)
}

/// `location` with `digest=` added to its query.
fn with_digest(location: &str, digest: &Digest) -> String {
    let separator = if location.contains('?') { '&' } else { '?' };
    format!(
        "{location}{separator}digest={}",
        query_escape(&digest.to_string())
    )
}

impl Registry {
    /// Whether the endpoint's repository has the blob `digest`.
    pub fn has_blob(&self, endpoint: &Endpoint, digest: &Digest) -> Result<bool> {
        let url = self.url(endpoint, &format!("blobs/{digest}"))?;
        let response = self.request(endpoint, Method::HEAD, &url, &[], &Payload::Empty)?;
        match response.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            // A HEAD answer has no body to say why; the upload that
            // follows gets the registry's reason.
            401 | 403 => Ok(false),
            _ => Err(refusal(
                response,
                &format!("reading blob {digest}"),
                endpoint,
            )),
        }
    }

    /// Sends the blob `digest` (of `size` bytes) unless the repository has
    /// it: mounted from `mount_from` (a repository of the same registry)
    /// when the registry can, else uploaded.
    pub fn upload_blob(
        &self,
        endpoint: &Endpoint,
        digest: &Digest,
        size: u64,
        source: &BlobSource<'_>,
        mount_from: Option<&str>,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<Uploaded> {
        if self.has_blob(endpoint, digest)? {
            return Ok(Uploaded::Present);
        }
        let mut start = self.url(endpoint, "blobs/uploads/")?;
        if let Some(from) = mount_from.filter(|from| *from != endpoint.repository) {
            start.push_str(&format!(
                "?mount={}&from={}",
                query_escape(&digest.to_string()),
                query_escape(from)
            ));
        }
        let response = self.request(endpoint, Method::POST, &start, &[], &Payload::Empty)?;
        let mut location = match response.status().as_u16() {
            201 => return Ok(Uploaded::Mounted),
            202 => redirect_target(&start, &response, endpoint)?,
            _ => return Err(refusal(response, "an upload", endpoint)),
        };
        if size <= CHUNK_SIZE {
            let url = with_digest(&location, digest);
            let payload = source.payload(0, size, progress);
            let response = self.request(endpoint, Method::PUT, &url, &octet_stream(), &payload)?;
            return match response.status().as_u16() {
                201 | 204 => Ok(Uploaded::Sent),
                _ => Err(refusal(response, &format!("blob {digest}"), endpoint)),
            };
        }
        let mut offset = 0;
        while offset < size {
            let len = CHUNK_SIZE.min(size - offset);
            let mut headers = octet_stream();
            headers.push(("Content-Range", format!("{offset}-{}", offset + len - 1)));
            let payload = source.payload(offset, len, progress);
            let response = self.request(endpoint, Method::PATCH, &location, &headers, &payload)?;
            match response.status().as_u16() {
                202 => {
                    location = redirect_target(&location, &response, endpoint)?;
                    offset += len;
                }
                // Part of a broken chunk arrived: go on from where the
                // registry says the upload is.
                416 => (location, offset) = self.upload_status(endpoint, &location)?,
                _ => {
                    return Err(refusal(
                        response,
                        &format!("a chunk of blob {digest}"),
                        endpoint,
                    ))
                }
            }
        }
        let url = with_digest(&location, digest);
        let response = self.request(endpoint, Method::PUT, &url, &[], &Payload::Empty)?;
        match response.status().as_u16() {
            201 | 204 => Ok(Uploaded::Sent),
            _ => Err(refusal(response, &format!("blob {digest}"), endpoint)),
        }
    }

    /// Where an upload stands: its location and the bytes the registry has
    /// (its `Range: 0-N` header).
    fn upload_status(&self, endpoint: &Endpoint, location: &str) -> Result<(String, u64)> {
        let response = self.request(endpoint, Method::GET, location, &[], &Payload::Empty)?;
        if response.status().as_u16() != 204 {
            return Err(refusal(response, "the upload's status", endpoint));
        }
        let next = redirect_target(location, &response, endpoint)?;
        let received = response
            .headers()
            .get("range")
            .and_then(|v| v.to_str().ok())
            .and_then(|range| range.rsplit_once('-'))
            .map(|(_, end)| end.trim().parse::<u64>().map(|end| end + 1))
            .transpose()
            .context("the registry's upload Range is not N-M")?
            .unwrap_or(0);
        Ok((next, received))
    }

    /// Puts the manifest `bytes` under `tag`; the registry must file it
    /// under the digest we computed.
    pub fn put_manifest(
        &self,
        endpoint: &Endpoint,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let url = self.url(endpoint, &format!("manifests/{tag}"))?;
        let headers = [("Content-Type", media_type.to_string())];
        let response = self.request(
            endpoint,
            Method::PUT,
            &url,
            &headers,
            &Payload::Bytes(bytes),
        )?;
        if !matches!(response.status().as_u16(), 201 | 202 | 204) {
            return Err(refusal(response, &format!("the manifest {tag}"), endpoint));
        }
        let filed = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(Digest::parse)
            .transpose()?;
        if let Some(filed) = filed.filter(|filed| *filed != digest) {
            bail!(
                "{} filed the manifest as {filed}, not {digest}",
                endpoint.host
            );
        }
        Ok(digest)
    }
}

fn octet_stream() -> Vec<(&'static str, String)> {
    vec![("Content-Type", "application/octet-stream".to_string())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_joins_the_locations_query() {
        let digest = Digest::of(b"x");
        assert_eq!(
            with_digest("http://r/v2/a/blobs/uploads/u?_state=s", &digest),
            format!("http://r/v2/a/blobs/uploads/u?_state=s&digest={digest}")
        );
        assert_eq!(
            with_digest("/v2/a/blobs/uploads/u", &digest),
            format!("/v2/a/blobs/uploads/u?digest={digest}")
        );
    }
}
