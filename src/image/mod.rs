//! Images: references, registries, manifests, the store and pulling.

pub mod digest;
pub mod manifest;
pub mod reference;
pub mod registries;
