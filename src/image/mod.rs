//! Images: references, digests and manifests, the store, and pulling
//! (`pull`) from registries (`distribution`: the HTTP client, auth and
//! registries.conf) through the layer unpacker (`layer`).

pub mod digest;
pub mod distribution;
pub mod layer;
pub mod manifest;
pub mod pull;
pub mod reference;
pub mod store;
