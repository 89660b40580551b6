//! Images as files: `save` writes docker-archive and oci-archive tars,
//! `load` reads them (and OCI layout directories) into the store.

pub mod load;
pub mod save;
