//! The command line: clap's structs (`args`) and the parsers of values
//! with a syntax of their own (`values`, and `mounts` for `-v` and
//! `--mount`). `commands::dispatch` maps each
//! verb to its command.

pub mod args;
pub mod mounts;
pub mod values;
