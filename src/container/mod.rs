//! Containers as things that last: their records and names (`record`,
//! `names`, and `name_index`, which finds a name's holder at once), the processes behind them (`identity`: pid plus start time),
//! their live dirs in the runtime dir (`live_dir`), the logs of detached
//! ones (`logfile`), their processes stopped for a while (`freeze`), the
//! networks connected to them (`connected`), `--rm`'s removal after
//! the exit status (`removal`), and what `ps` lists of them (`listing`).

pub mod connected;
pub mod freeze;
pub mod identity;
pub mod listing;
pub mod live_dir;
pub mod logfile;
pub mod name_index;
pub mod names;
pub mod record;
pub mod removal;
