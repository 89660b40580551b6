//! Small helpers with no knowledge of containers: files written by rename
//! and trees removed whatever their modes (`fs`), times as rocker records
//! and shows them (`time`), extended attributes (`xattr`).

pub mod fs;
pub mod time;
pub mod xattr;
