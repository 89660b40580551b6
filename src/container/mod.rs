//! Containers as things that last: their records and names (`record`,
//! `names`), the processes behind them (`identity`: pid plus start time),
//! their live dirs in the runtime dir (`live_dir`), and the logs of
//! detached ones (`logfile`).

pub mod identity;
pub mod live_dir;
pub mod logfile;
pub mod names;
pub mod record;
