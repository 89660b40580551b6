//! One module per verb family (`run` and create, `start` and restart,
//! `exec`, `attach`, `container`, `cp`, `image`, `push`, `archive` for save
//! and load, `commit` for commit, export and import, `generate`, `info`,
//! `login`, `network`, `stats`, `system`, `volume`): each turns parsed arguments into work. `dispatch`
//! maps a parsed command line to them; `output` writes their tables.

pub mod archive;
pub mod attach;
pub mod build;
pub mod commit;
pub mod container;
pub mod cp;
pub mod dispatch;
pub mod exec;
pub mod filters;
pub mod generate;
pub mod image;
pub mod info;
pub mod login;
pub mod network;
pub mod output;
pub mod push;
pub mod run;
pub mod start;
pub mod stats;
pub mod system;
pub mod template;
pub mod volume;
