//! How a supervisor forked to the background (a detached run's monitor,
//! `exec -d`'s) tells the caller that the command runs, or why it could
//! not: one pipe, whose first line is `started`, or a status line and the
//! message once the supervisor has cleaned up.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::error::{exit_status_of, StatusError};

const STARTED: &str = "started";

/// A connected pair: (the caller's end, the supervisor's). Both are
/// close-on-exec.
pub fn pair() -> Result<(OwnedFd, Reporter)> {
    let (read, write) = pipe2(OFlag::O_CLOEXEC).context("creating a pipe")?;
    Ok((read, Reporter(Some(std::fs::File::from(write)))))
}

/// The supervisor's end; it reports once.
pub struct Reporter(Option<std::fs::File>);

impl Reporter {
    /// The command runs. The caller may be gone (killed): the command runs
    /// on all the same.
    pub fn started(&mut self) {
        if let Some(mut report) = self.0.take() {
            let _ = writeln!(report, "{STARTED}");
        }
    }

    /// Why the command did not run, if nothing was reported yet; false
    /// when the caller had heard already (its start was reported).
    pub fn failed(&mut self, err: &anyhow::Error) -> bool {
        match self.0.take() {
            Some(mut report) => {
                let _ = write!(report, "{}\n{err:#}", exit_status_of(err));
                true
            }
            None => false,
        }
    }
}

/// What the caller hears.
pub enum Outcome {
    Started,
    /// The command did not run: why, with the status to exit with.
    Failed(anyhow::Error),
    /// The supervisor ended without a word (killed).
    Silent,
}

/// Waits on the caller's end for the supervisor's report.
pub fn wait(report: OwnedFd) -> Result<Outcome> {
    let mut reader = BufReader::new(std::fs::File::from(report));
    let mut first = String::new();
    reader
        .read_line(&mut first)
        .context("reading the supervisor's report")?;
    if first.trim_end() == STARTED {
        return Ok(Outcome::Started);
    }
    let mut message = String::new();
    let _ = reader.read_to_string(&mut message);
    Ok(match first.trim_end().parse::<i32>() {
        Ok(status) => {
            Outcome::Failed(StatusError::new(status, message.trim_end().to_string()).into())
        }
        Err(_) => Outcome::Silent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_a_failure_and_silence_read_back() {
        let (read, mut reporter) = pair().unwrap();
        reporter.started();
        assert!(!reporter.failed(&anyhow::anyhow!("late")));
        assert!(matches!(wait(read).unwrap(), Outcome::Started));

        let (read, mut reporter) = pair().unwrap();
        let err: anyhow::Error = StatusError::new(127, "not found").into();
        assert!(reporter.failed(&err));
        match wait(read).unwrap() {
            Outcome::Failed(err) => {
                assert_eq!(exit_status_of(&err), 127);
                assert_eq!(err.to_string(), "not found");
            }
            _ => panic!("not a failure"),
        }

        let (read, reporter) = pair().unwrap();
        drop(reporter);
        assert!(matches!(wait(read).unwrap(), Outcome::Silent));
    }
}
