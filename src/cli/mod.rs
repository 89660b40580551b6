//! The command line: clap's structs (`args`), the parsers of values with a
//! syntax of their own (`values`), and the table from verb to command
//! (`dispatch`).

pub mod args;
pub mod dispatch;
pub mod values;
