//! Talking to registries the distribution-spec way: `client` (the HTTP
//! client: ping, manifests, blobs), `upload` (the push side: blob checks,
//! mounts, uploads, manifests), `auth` (bearer and basic challenges,
//! stored credentials) and `registries_conf` (mirrors, insecure and
//! blocked registries from containers-registries.conf).

pub mod auth;
pub mod client;
pub mod registries_conf;
pub mod upload;
