//! One module per subcommand: each turns parsed arguments into work.

pub mod info;
pub mod run;
