//! Small helpers with no knowledge of containers: work left to a detached
//! child (`background`), files written by rename,
//! read if present, and trees removed whatever their modes (`fs`), file
//! locks (`lock`), waits with a deadline (`wait`), times as rocker records
//! and shows them (`time`), extended attributes (`xattr`), typed fields
//! kept as text in JSON (`as_text`), a list worked through by a few
//! threads (`parallel`), random ids (`random`), bytes as hex (`hex`), the
//! names docker allows its objects (`names`), and scratch dirs for unit
//! tests.

pub mod as_text;
pub mod background;
pub mod fs;
pub mod hex;
pub mod lock;
pub mod names;
pub mod parallel;
pub mod random;
#[cfg(test)]
pub mod scratch;
pub mod time;
pub mod wait;
pub mod xattr;
