//! Images: references, registries, manifests, the store and pulling.

pub mod auth;
pub mod digest;
pub mod extract;
pub mod manifest;
pub mod pull;
mod readahead;
pub mod reference;
pub mod registries;
pub mod registry;
pub mod store;
