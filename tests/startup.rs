//! Start-up work, checked without a clock (times stay in
//! contrib/bench/run.sh): the system calls of `run --rm --network none
//! IMAGE true`, counted by strace as the test user. Not run in the systemd
//! VM, which has no strace and nothing to add here.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// rocker with a store of its own and the kernel overlay.
fn rocker(data: &Path, args: &[&str]) -> String {
    let mut command = harness().rocker_in(data);
    command.env("ROCKER_ROOTFS", "overlay").args(args);
    ok(output_within(command, Duration::from_secs(60)))
}

/// The calls of one run (the "total" line of `strace -f -c`).
fn syscalls_of_a_run(data: &Path) -> u64 {
    let h = harness();
    let report = data.join("strace.txt");
    let mut command = h.command_as_user("/usr/bin/strace");
    command
        .env("XDG_DATA_HOME", data)
        .env("ROCKER_ROOTFS", "overlay")
        .args(["-f", "-c", "-o"])
        .arg(&report)
        .arg(&h.binary)
        .args(["run", "--rm", "--network", "none", "box:1", "true"]);
    ok(output_within(command, Duration::from_secs(60)));
    let text = std::fs::read_to_string(&report).unwrap();
    let total = text
        .lines()
        .find(|line| line.trim_end().ends_with("total"))
        .unwrap_or_else(|| panic!("no total in {text}"));
    // "100.00 SECONDS USECS/CALL CALLS [ERRORS] total"
    total.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// The count stays under a ceiling set with headroom over today's (868 on
/// Linux 6.18), and does not grow with the containers the store keeps.
#[test]
fn a_run_makes_a_bounded_number_of_system_calls_whatever_the_store_holds() {
    require("/usr/bin/strace", "strace");
    const CEILING: u64 = 1000;
    let h = harness();
    let data = h.scratch("startup-data");
    let tar = data.join("box.tar");
    std::fs::write(&tar, common::oci::tar_of_dir(&h.rootfs)).unwrap();
    h.give(&tar);
    rocker(&data, &["import", tar.to_str().unwrap(), "box:1"]);
    // A first run probes and caches what the host offers.
    rocker(
        &data,
        &["run", "--rm", "--network", "none", "box:1", "true"],
    );
    let empty = syscalls_of_a_run(&data);
    assert!(
        empty <= CEILING,
        "a run makes {empty} system calls, over the ceiling of {CEILING}: find what was added \
         to the start path (strace -f -c), or raise the ceiling if it must be there"
    );
    for _ in 0..20 {
        rocker(&data, &["run", "--network", "none", "box:1", "true"]);
    }
    let kept = syscalls_of_a_run(&data);
    assert!(
        kept <= empty + 5,
        "with 20 containers kept a run makes {kept} system calls, {empty} without: the start \
         path reads something per container"
    );
}
