//! The container's root file system: where it comes from (`backing`: a
//! kernel overlay of the image's layers, fuse-overlayfs, or a copy), the
//! mounts laid over it as a plan (`plan`) and carrying that plan out inside
//! the container's mount namespace (`mount`), with every path resolved
//! inside the root (`inroot`). `etc_files` writes /etc/hosts and friends,
//! `users` reads the image's accounts.

pub mod backing;
pub mod etc_files;
pub mod inroot;
pub mod mount;
pub mod plan;
pub mod users;
