//! What a container's root is made of, and its files in the store: the
//! host's choice of mode (`mode`), the container's own dir with its lower
//! links, upper and work dirs (`container_dir`), reading a file through
//! the layers as overlay would show it (`layers`), the copy-mode fallback
//! (`copy`), the fuse-overlayfs helper (`fuse_overlayfs`), the layer of
//! files rocker adds (`generated`), what a container changed (`changes`,
//! for diff), and its files as a tar (`layer_tar`, for commit and export,
//! reading through `tree`, which never follows a symlink).

pub mod changes;
pub mod container_dir;
pub mod copy;
pub mod fuse_overlayfs;
pub mod generated;
pub mod layer_tar;
pub mod layers;
pub mod mode;
pub mod tree;
