//! One layer on its way into the store: `readahead` keeps the download
//! ahead of the tar reader, `unpack` turns the tar into a layer directory
//! that overlayfs reads (whiteouts and opaque marks), never writing
//! outside it.

pub(super) mod readahead;
pub mod unpack;
