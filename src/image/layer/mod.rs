//! One layer on its way into the store: `ingest` takes it from any
//! stream (verified, kept, extracted), `readahead` keeps the download
//! ahead of the tar reader, `header_guard` refuses oversized metadata
//! records before the tar reader buffers them, and `unpack` turns the tar
//! into a layer directory that overlayfs reads (whiteouts and opaque
//! marks), never writing outside it. `codec` compresses and decompresses
//! blobs, for pull and for push; `owners` knows the owners the image gives
//! the files, which the extracted copy cannot keep.

pub mod codec;
mod header_guard;
pub mod ingest;
pub mod owners;
pub(super) mod readahead;
pub mod unpack;
