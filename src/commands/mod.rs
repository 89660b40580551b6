//! One module per subcommand: each turns parsed arguments into work.

pub mod container;
pub mod dispatch;
pub mod exec;
pub mod image;
pub mod info;
pub mod login;
pub mod output;
pub mod run;
pub mod stats;
