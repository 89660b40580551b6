//! Containers as things that last: their records and names (`record`,
//! `names`), the processes behind them (`process`), and the logs of
//! detached ones (`logfile`).

pub mod logfile;
pub mod names;
pub mod process;
pub mod record;
