//! `rocker generate systemd CONTAINER`: a systemd user unit that starts
//! the container at login (or boot, with lingering) and stops it with the
//! session, podman's answer to "nothing starts containers after a reboot"
//! when there is no daemon.

use anyhow::{Context, Result};

use crate::cli::args::GenerateSystemdArgs;
use crate::container::record::{ContainerRecord, Containers};
use crate::host::dirs::Dirs;
use crate::spec::RestartPolicy;
use crate::util::fs::write_atomic;

/// systemd's `Restart=` for a container's own policy.
fn systemd_restart(policy: RestartPolicy) -> &'static str {
    match policy {
        RestartPolicy::No => "no",
        RestartPolicy::OnFailure(_) => "on-failure",
        RestartPolicy::Always | RestartPolicy::UnlessStopped => "always",
    }
}

/// The unit's text. The service runs `start -a` (the container in the
/// foreground of the service, its output in the journal) and `stop`.
pub fn unit(record: &ContainerRecord, rocker: &str, stop_time: u64) -> String {
    let name = &record.name;
    let restart = match record.restart {
        RestartPolicy::No => "on-failure",
        policy => systemd_restart(policy),
    };
    let limit = match record.restart {
        RestartPolicy::OnFailure(Some(n)) => format!("StartLimitBurst={}\n", n + 1),
        _ => String::new(),
    };
    format!(
        "# container-{name}.service, written by rocker generate systemd\n\
         [Unit]\n\
         Description=rocker container {name}\n\
         Documentation=man:rocker(1)\n\
         Wants=network-online.target\n\
         After=network-online.target\n\
         {limit}\n\
         [Service]\n\
         Type=simple\n\
         Restart={restart}\n\
         ExecStart={rocker} start -a {name}\n\
         ExecStop={rocker} stop -t {stop_time} {name}\n\
         TimeoutStopSec={}\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        stop_time + 10
    )
}

pub fn systemd_command(args: GenerateSystemdArgs) -> Result<i32> {
    let dirs = Dirs::discover()?;
    let containers = Containers::open(&dirs)?;
    let record = containers.find(&args.container)?;
    let rocker = std::env::current_exe().context("finding rocker's own path")?;
    let text = unit(
        &record,
        &rocker.to_string_lossy(),
        super::container::stop_time(&record, args.time),
    );
    if args.files {
        let path = std::env::current_dir()?.join(format!("container-{}.service", record.name));
        write_atomic(&path, text.as_bytes(), 0o644)?;
        println!("{}", path.display());
    } else {
        print!("{text}");
    }
    Ok(0)
}
