//! Images: references, digests and manifests, the store, pulling (`pull`)
//! from registries and pushing (`push`) to them (`distribution`: the HTTP
//! client, uploads, auth and registries.conf), and layers (`layer`: the
//! unpacker, compression).

pub mod archive;
pub mod assemble;
pub mod config_changes;
pub mod digest;
pub mod distribution;
pub mod layer;
pub mod lookup_cache;
pub mod manifest;
pub mod pull;
pub mod push;
pub mod reference;
pub mod store;
pub mod stored;
