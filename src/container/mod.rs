//! Containers as things that last: their records and names (`record`,
//! `names`), the processes behind them (`identity`: pid plus start time),
//! their live dirs in the runtime dir (`live_dir`), the logs of detached
//! ones (`logfile`), and their processes stopped for a while (`freeze`).

pub mod freeze;
pub mod identity;
pub mod live_dir;
pub mod logfile;
pub mod names;
pub mod record;
