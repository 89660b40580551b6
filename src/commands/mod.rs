//! One module per subcommand: each turns parsed arguments into work.

pub mod image;
pub mod info;
pub mod login;
pub mod run;
