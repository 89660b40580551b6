//! Small helpers with no knowledge of containers: files written by rename
//! and trees removed whatever their modes (`fs`), times as rocker records
//! and shows them (`time`), extended attributes (`xattr`), typed fields
//! kept as text in JSON (`as_text`).

pub mod as_text;
pub mod fs;
pub mod time;
pub mod xattr;
