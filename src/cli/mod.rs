//! The command line: clap's structs (`args`) and the parsers of values
//! with a syntax of their own (`values`, and `mounts` for `-v` and
//! `--mount`), and `quick`, which parses the verbs scripts run most
//! without building every other verb's flags. `commands::dispatch` maps
//! each verb to its command.

pub mod args;
pub mod mounts;
pub mod quick;
pub mod values;
