//! Running a container: `launch` records it and starts its monitor, the
//! parent side (`monitor`) clones it and watches it, and the container
//! side (`init`) sets it up and execs its command; `join` is `exec`'s
//! way into a running one. They share `process` (the last steps before
//! exec), `channel` (their handshake), `supervise`, `console`, `stdio_pipes`
//! and `reaper` (signals, terminal, logs, `--init`), `namespaces` and
//! `capabilities`; `host_pid` ends a `--pid host` container's processes.
//! `container_root` reaches a container's root for a
//! moment, running or stopped, in a child of its own, for `cp`.

pub mod attach_server;
pub mod capabilities;
pub mod channel;
pub mod console;
pub mod container_root;
pub mod host_pid;
pub mod init;
pub mod join;
pub mod launch;
pub mod monitor;
pub mod namespaces;
pub mod path_lookup;
pub mod process;
pub mod reaper;
pub mod root_emulation;
pub mod seccomp;
pub mod start_report;
pub mod stdio;
pub mod stdio_pipes;
pub mod supervise;

/// A container on a user-defined network keeps its /etc/hosts in its
/// store dir (see `LiveDir::compose_etc_files`), where the keeper rewrites it.
pub const SHARED_HOSTS_FILE: &str = "hosts";
