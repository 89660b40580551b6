//! Resource limits. What a host can do decides what is tested: with cgroup
//! v2 and a systemd user manager for the user rocker runs as (a laptop, or
//! the VM of tests/vm/run.sh), limits must be enforced; without them (this
//! project's CI machine: hybrid cgroups, and rocker runs as a throwaway uid
//! with no session), a run with limits must fail with 125 and the reason,
//! and a run without them must work. The host is judged here from the
//! kernel and the session, not from rocker's own opinion; set
//! ROCKER_TEST_CGROUPS=delegated or =unavailable to insist on one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Host {
    Delegated,
    Unavailable,
}

fn host() -> Host {
    match std::env::var("ROCKER_TEST_CGROUPS").as_deref() {
        Ok("delegated") => return Host::Delegated,
        Ok("unavailable") => return Host::Unavailable,
        Ok(other) => panic!("ROCKER_TEST_CGROUPS={other}: expected delegated or unavailable"),
        Err(_) => {}
    }
    let v2 = nix::sys::statfs::statfs("/sys/fs/cgroup")
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC);
    // The harness runs rocker as a throwaway uid (no session) when the
    // tests run as root; otherwise as us, in our session.
    let session = !harness().switch_user
        && std::env::var_os("XDG_RUNTIME_DIR")
            .is_some_and(|dir| Path::new(&dir).join("systemd/private").exists());
    match v2 && session {
        true => Host::Delegated,
        false => Host::Unavailable,
    }
}

/// rocker as the test user, with a data dir of the test's own and the
/// user's real runtime dir when it has a session (its user manager lives
/// there), so that rocker can reach systemd.
fn command(data: &Path, args: &[&str]) -> Command {
    let mut command = match (host(), std::env::var_os("XDG_RUNTIME_DIR")) {
        (Host::Delegated, Some(runtime)) => {
            let mut command = harness().rocker_with_runtime(Path::new(&runtime));
            if let Some(bus) = std::env::var_os("DBUS_SESSION_BUS_ADDRESS") {
                command.env("DBUS_SESSION_BUS_ADDRESS", bus);
            }
            command
        }
        _ => harness().rocker(),
    };
    command.env("XDG_DATA_HOME", data).args(args);
    command
}

fn rocker(data: &Path, args: &[&str]) -> Output {
    output_within(command(data, args), Duration::from_secs(120))
}

fn run_args<'a>(rootfs: &'a str, options: &[&'a str], command: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["--network", "none", "--rootfs", rootfs]);
    args.extend_from_slice(command);
    args
}

fn rootfs() -> String {
    harness().rootfs.to_string_lossy().to_string()
}

fn inspect(data: &Path, name: &str) -> Value {
    let list: Vec<Value> = serde_json::from_str(&ok(rocker(data, &["inspect", name]))).unwrap();
    list.into_iter().next().unwrap()
}

/// The running container's cgroup, as the host sees it.
fn cgroup_of(data: &Path, name: &str) -> PathBuf {
    let path = inspect(data, name)["State"]["CgroupPath"].clone();
    PathBuf::from(path.as_str().expect("a container with limits has a cgroup"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("reading {}: {err}", path.display()))
        .trim()
        .to_string()
}

fn require_delegated() -> bool {
    host() == Host::Delegated
}

#[test]
fn without_cgroups_limits_are_ignored_with_the_reason_or_refused_when_asked() {
    let data = harness().scratch("cgroups-unavailable");
    let root = rootfs();
    // A run without limits works on any host.
    assert_eq!(
        ok(rocker(&data, &run_args(&root, &["--rm"], &["echo", "ran"]))),
        "ran\n"
    );
    if require_delegated() {
        return; // The other tests cover this host; nothing to refuse here.
    }
    // As docker and podman: a warning naming what is missing, and a run.
    let strict = harness().scratch("cgroups-strict-config");
    std::fs::create_dir_all(strict.join("rocker")).unwrap();
    std::fs::write(
        strict.join("rocker/config.toml"),
        "[limits]\nunenforceable = \"error\"\n",
    )
    .unwrap();
    harness().give_tree(&strict);
    for flags in [
        &["--memory", "64m"][..],
        &["--cpus", "0.5"],
        &["--pids-limit", "10"],
        &["--cpu-shares", "512"],
    ] {
        let mut options = vec!["--rm"];
        options.extend_from_slice(flags);
        let args = run_args(&root, &options, &["echo", "ran"]);
        let out = rocker(&data, &args);
        assert_eq!(code(&out), 0, "{flags:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "ran\n");
        let message = stderr(&out);
        assert!(message.contains("limits are ignored"), "{message}");
        assert!(
            message.contains("cgroup v2") || message.contains("systemd"),
            "the message names what is missing: {message}"
        );
        // Refused instead, when config.toml says so.
        let mut refusing = command(&data, &args);
        refusing.env("XDG_CONFIG_HOME", &strict);
        let out = output_within(refusing, Duration::from_secs(120));
        assert_eq!(code(&out), 125, "{flags:?}");
        assert!(stderr(&out).contains("unavailable"), "{}", stderr(&out));
    }
    let info = ok(rocker(&data, &["info", "--format", "json"]));
    let info: Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["cgroups"]["limits"]["ok"], false, "{info}");
}

#[test]
#[ignore = "needs a host that delegates cgroup v2 to the test user: tests/vm/run.sh runs it"]
fn a_memory_limit_oom_kills_with_137_and_inspect_says_so() {
    assert_delegated();
    let data = harness().scratch("cgroups-memory");
    let root = rootfs();
    // dd's 64 MiB buffer does not fit in 32 MiB without swap.
    let out = rocker(
        &data,
        &run_args(
            &root,
            &["--name", "hog", "--memory", "32m", "--memory-swap", "32m"],
            &[
                "sh",
                "-c",
                "cat /proc/self/cgroup /sys/fs/cgroup/memory.max; \
                 dd if=/dev/zero of=/dev/null bs=64M count=1",
            ],
        ),
    );
    assert_eq!(code(&out), 137, "{}", stderr(&out));
    // Its own cgroup is / to it, and mounted (read-only) where runtimes look.
    assert_eq!(stdout(&out), "0::/\n33554432\n");
    assert!(stderr(&out).contains("out of memory"), "{}", stderr(&out));
    let state = inspect(&data, "hog");
    assert_eq!(state["State"]["OOMKilled"], true, "{state}");
    assert_eq!(state["State"]["ExitCode"], 137);
    assert_eq!(state["HostConfig"]["Memory"], 32 << 20);
    ok(rocker(&data, &["rm", "hog"]));

    // Under the limit, the same work is fine; a reservation is memory.low.
    let fits = rocker(
        &data,
        &run_args(
            &root,
            &["--rm", "--memory", "128m", "--memory-reservation", "64m"],
            &[
                "sh",
                "-c",
                "cat /sys/fs/cgroup/memory.low; dd if=/dev/zero of=/dev/null bs=32M count=1",
            ],
        ),
    );
    assert_eq!(code(&fits), 0, "{}", stderr(&fits));
    assert_eq!(stdout(&fits), format!("{}\n", 64u64 << 20));
}

#[test]
#[ignore = "needs a host that delegates cgroup v2 to the test user: tests/vm/run.sh runs it"]
fn a_pids_limit_stops_a_fork_loop_and_the_container_survives() {
    assert_delegated();
    let data = harness().scratch("cgroups-pids");
    let root = rootfs();
    // Counting with shell builtins only: at the limit, nothing can fork.
    // The loop runs in a shell of its own, which ends when it cannot fork.
    let script = "sh -c 'for i in $(seq 1 60); do sleep 30 & done' 2>/dev/null; \
                  echo survived; set -- /proc/[0-9]*; echo $#";
    let out = rocker(
        &data,
        &run_args(
            &root,
            &["--rm", "--pids-limit", "20"],
            &["sh", "-c", script],
        ),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("survived"), "{text}");
    let processes: u32 = lines.next().unwrap().trim().parse().unwrap();
    assert!(
        processes <= 20,
        "{processes} processes under --pids-limit 20"
    );
    assert!(processes >= 10, "the loop did start processes: {processes}");
}

#[test]
#[ignore = "needs a host that delegates cgroup v2 to the test user: tests/vm/run.sh runs it"]
fn cpu_max_is_set_and_a_busy_loop_gets_about_its_share() {
    assert_delegated();
    let data = harness().scratch("cgroups-cpu");
    let root = rootfs();
    ok(rocker(
        &data,
        &run_args(
            &root,
            &[
                "-d",
                "--name",
                "busy",
                "--cpus",
                "0.5",
                "--cpu-weight",
                "50",
            ],
            // Bounded: a failed test must not leave it spinning for ever.
            &["timeout", "120", "sh", "-c", "while :; do :; done"],
        ),
    ));
    let cgroup = cgroup_of(&data, "busy");
    assert_eq!(read(&cgroup.join("cpu.max")), "50000 100000");
    assert_eq!(read(&cgroup.join("cpu.weight")), "50");
    let usage = |cgroup: &Path| -> u64 {
        read(&cgroup.join("cpu.stat"))
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec ").map(|n| n.parse().unwrap()))
            .unwrap()
    };
    let (before, start) = (usage(&cgroup), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let share = (usage(&cgroup) - before) as f64 / start.elapsed().as_micros() as f64;
    // A busy loop alone would take a whole CPU (1.0); the limit is 0.5.
    assert!(
        (0.3..=0.6).contains(&share),
        "CPU share {share:.2} under --cpus 0.5"
    );

    // stats reads the same cgroup.
    let stats = ok(rocker(
        &data,
        &["stats", "--no-stream", "--format", "json", "busy"],
    ));
    let stats: Vec<Value> = serde_json::from_str(&stats).unwrap();
    let cpu = stats[0]["CpuPercent"].as_f64().unwrap();
    assert!((25.0..=65.0).contains(&cpu), "stats CPU {cpu}%");
    assert!(stats[0]["MemoryUsage"].as_u64().unwrap() > 0);
    assert!(stats[0]["Pids"].as_u64().unwrap() >= 1);
    let table = ok(rocker(&data, &["stats", "--no-stream"]));
    assert!(
        table.starts_with("CONTAINER ID") && table.contains("busy"),
        "{table}"
    );
    ok(rocker(&data, &["rm", "-f", "busy"]));
    assert!(!cgroup.exists(), "{} is left after rm", cgroup.display());
}

#[test]
#[ignore = "needs a host that delegates cgroup v2 to the test user: tests/vm/run.sh runs it"]
fn stop_leaves_nothing_in_the_cgroup_and_exec_joins_it() {
    assert_delegated();
    let data = harness().scratch("cgroups-stop");
    let root = rootfs();
    ok(rocker(
        &data,
        &run_args(
            &root,
            &["-d", "--name", "stubborn", "--memory", "64m"],
            &[
                "sh",
                "-c",
                "trap '' TERM; (trap '' TERM; sleep 1031) & while :; do sleep 0.1; done",
            ],
        ),
    ));
    let cgroup = cgroup_of(&data, "stubborn");
    // An exec'd process is in the container's cgroup (and namespace).
    let seen = ok(rocker(
        &data,
        &["exec", "stubborn", "cat", "/proc/self/cgroup"],
    ));
    assert_eq!(seen, "0::/\n");
    let mut long = spawn_quiet(command(&data, &["exec", "stubborn", "sleep", "1032"]));
    wait_for_process("sleep 1032", Duration::from_secs(30));
    let members = read(&cgroup.join("cgroup.procs"));
    assert!(
        members.lines().count() >= 3,
        "init, sleep 1031, sleep 1032: {members}"
    );

    ok(rocker(&data, &["stop", "-t", "1", "stubborn"]));
    let _ = wait_within(&mut long, Duration::from_secs(30));
    assert!(processes_with("sleep 1031").is_empty());
    assert!(processes_with("sleep 1032").is_empty());
    assert!(
        !cgroup.exists(),
        "the monitor removes the cgroup when the container ends"
    );
    ok(rocker(&data, &["rm", "stubborn"]));
    assert!(
        !cgroup.parent().unwrap().exists(),
        "the container's cgroups are gone after rm"
    );
}

/// The enforcement tests need a delegating host (they are `ignore`d, and
/// tests/vm/run.sh runs them with --include-ignored): run anywhere else,
/// they fail saying so rather than pass without testing.
fn assert_delegated() {
    assert!(
        require_delegated(),
        "this host delegates no cgroup v2 subtree to the test user: run these tests in \
         the VM of tests/vm/run.sh (or set ROCKER_TEST_CGROUPS=delegated on a host that does)"
    );
}

/// Runs the shell `script` in a new scope `unit` that systemd delegates to
/// the test user, with rocker's store at `data`.
fn in_delegated_scope(unit: &str, script: &str, data: &Path) -> std::process::Output {
    let mut command = Command::new("systemd-run");
    command
        .args([
            "--user",
            "--scope",
            "--quiet",
            "-p",
            "Delegate=yes",
            "--unit",
            unit,
        ])
        .args(["--", "sh", "-c", script])
        .env("XDG_DATA_HOME", data);
    output_within(command, Duration::from_secs(120))
}

#[test]
#[ignore = "needs a host that delegates cgroup v2 to the test user: tests/vm/run.sh runs it"]
fn an_already_delegated_cgroup_is_used_as_it_is() {
    assert_delegated();
    let data = harness().scratch("cgroups-case1");
    let root = rootfs();
    // A shell in a scope systemd delegated to us starts the container: no
    // new scope is made, and the shell moves to the scope's init leaf.
    let unit = format!("rocker-test-{}.scope", std::process::id());
    let rocker_line = format!(
        "{} run -d --name inside --memory 64m --network none --rootfs {root} sleep 300",
        harness().binary.display()
    );
    let script = format!("{rocker_line} >/dev/null && cat /proc/self/cgroup");
    let shell_cgroup = ok(in_delegated_scope(&unit, &script, &data));
    assert!(
        shell_cgroup.trim_end().ends_with(&format!("/{unit}/init")),
        "{shell_cgroup}"
    );
    let leaf = cgroup_of(&data, "inside");
    let want = format!("/{unit}/rocker-");
    assert!(leaf.to_string_lossy().contains(&want), "{}", leaf.display());
    assert_eq!(read(&leaf.join("memory.max")), (64u64 << 20).to_string());
    ok(rocker(&data, &["rm", "-f", "inside"]));
    assert!(!leaf.exists());

    // A --rm run in a delegated scope leaves nothing in it once it returns:
    // no container cgroup, no monitor leaf held by a waiting sweep.
    let unit = format!("rocker-test-rm-{}.scope", std::process::id());
    let script = format!(
        "{} run --rm --memory 64m --network none --rootfs {root} true && \
         scope=/sys/fs/cgroup$(sed -n 's/^0:://p' /proc/self/cgroup) && find \"$(dirname \"$scope\")\" -mindepth 1 -maxdepth 1 -type d -printf '%f\\n'",
        harness().binary.display()
    );
    let left = ok(in_delegated_scope(&unit, &script, &data));
    assert_eq!(
        left.split_whitespace().collect::<Vec<_>>(),
        ["init"],
        "{left}"
    );
}

#[test]
#[ignore = "needs a host that delegates cgroup v2 to the test user: tests/vm/run.sh runs it"]
fn a_pty_and_the_exit_status_pass_through_the_delegated_scope() {
    assert_delegated();
    let data = harness().scratch("cgroups-tty");
    let root = rootfs();
    // rocker starts itself again in a scope: same process, same stdio.
    let out = rocker(
        &data,
        &run_args(
            &root,
            &["--rm", "-t", "--pids-limit", "50"],
            &["sh", "-c", "tty; cat /sys/fs/cgroup/pids.max; exit 3"],
        ),
    );
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let text = stdout(&out).replace('\r', "");
    assert!(
        text.starts_with("/dev/pts/") && text.ends_with("\n50\n"),
        "{text:?}"
    );
}

#[test]
#[ignore = "needs a host that delegates cgroup v2 to the test user: tests/vm/run.sh runs it"]
fn pause_of_a_container_with_a_cgroup_uses_its_freezer() {
    assert_delegated();
    let data = harness().scratch("cgroups-pause");
    let root = rootfs();
    ok(rocker(
        &data,
        &run_args(
            &root,
            &["-d", "--name", "frozen", "--memory", "64m"],
            // Bounded: a failed test must not leave it spinning for ever.
            &["timeout", "120", "sh", "-c", "while :; do :; done"],
        ),
    ));
    let cgroup = cgroup_of(&data, "frozen");
    ok(rocker(&data, &["pause", "frozen"]));
    assert_eq!(inspect(&data, "frozen")["State"]["PausedBy"], "freezer");
    assert!(read(&cgroup.join("cgroup.events")).contains("frozen 1"));
    ok(rocker(&data, &["unpause", "frozen"]));
    assert!(read(&cgroup.join("cgroup.events")).contains("frozen 0"));
    assert_eq!(inspect(&data, "frozen")["State"]["Status"], "running");
    ok(rocker(&data, &["rm", "-f", "frozen"]));
}
