//! The host as rocker finds it: what it offers a rootless user (`probe`,
//! `userns`, `which`; `nested` when the host is itself a container), where rocker keeps its files (`dirs`) and rocker's
//! own settings (`config`), and processes' namespaces (`proc_ns`). Nothing
//! here knows of containers.

pub mod config;
pub mod dirs;
pub mod nested;
pub mod probe;
pub mod proc_ns;
pub mod userns;
pub mod which;
