//! Containers that outlive the command: `run -d`, `ps`, `logs`, `stop`,
//! `kill`, `rm`, `inspect`, `container prune`, names, and what is left
//! when a monitor is killed. Each test has a data dir (so its own list of
//! containers) of its own.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::Value;

struct Store {
    data: PathBuf,
}

impl Store {
    fn new(name: &str) -> Store {
        Store {
            data: harness().scratch(name),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = harness().rocker_in(&self.data);
        command.args(args);
        command
    }

    fn rocker(&self, args: &[&str]) -> Output {
        output_within(self.command(args), Duration::from_secs(60))
    }

    /// rocker in the background, its output collected (see `wait_output`).
    fn spawn(&self, args: &[&str], stdin: Stdio) -> Child {
        let mut command = self.command(args);
        command.stdin(stdin);
        spawn_collecting(command)
    }

    /// `run -d ... --rootfs BUSYBOX COMMAND...`; returns the printed id.
    fn detach(&self, options: &[&str], command: &[&str]) -> String {
        let rootfs = harness().rootfs.to_string_lossy().to_string();
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(options);
        args.extend_from_slice(&["--rootfs", &rootfs]);
        args.extend_from_slice(command);
        let id = ok(self.rocker(&args)).trim().to_string();
        assert_eq!(id.len(), 64, "{id}");
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        id
    }

    /// `ps -a --format json`: docker's one object per line.
    fn ps_json(&self) -> Vec<Value> {
        ok(self.rocker(&["ps", "-a", "--no-trunc", "--format", "json"]))
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }

    fn inspect(&self, name: &str) -> Value {
        let list: Vec<Value> = serde_json::from_str(&ok(self.rocker(&["inspect", name]))).unwrap();
        list.into_iter().next().unwrap()
    }

    fn state(&self, name: &str) -> String {
        self.inspect(name)["State"]["Status"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Waits until `name`'s log says `ready`: its traps are set.
    fn wait_ready(&self, name: &str) {
        self.wait_ready_for(name, "ready");
    }

    /// Waits until `name`'s log holds `marker`.
    fn wait_ready_for(&self, name: &str, marker: &str) {
        let start = Instant::now();
        while !ok(self.rocker(&["logs", name])).contains(marker) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{name} never said ready"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `name` is in state `want`.
    fn wait_state(&self, name: &str, want: &str) {
        let start = Instant::now();
        loop {
            let state = self.state(name);
            if state == want {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{name} stays {state}, not {want}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Processes whose environment mentions `text`, with their command lines
/// (zombies have neither, so they never count).
fn processes_with_env(text: &str) -> Vec<(u32, String)> {
    let mut found = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if pid != std::process::id() && String::from_utf8_lossy(&environ).contains(text) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

#[test]
fn a_detached_container_prints_its_id_and_ps_lists_it() {
    let s = Store::new("lifecycle-ps");
    let id = s.detach(&["--name", "web", "--network", "none"], &["sleep", "300"]);

    let table = ok(s.rocker(&["ps"]));
    let row = table.lines().find(|l| l.contains("web")).expect(&table);
    assert!(row.starts_with(&id[..12]), "{table}");
    assert!(row.contains("Up "), "{table}");
    assert!(table.lines().next().unwrap().starts_with("CONTAINER ID"));
    assert_eq!(ok(s.rocker(&["ps", "-q"])).trim(), &id[..12]);

    let list = s.ps_json();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["ID"], id.as_str());
    assert_eq!(list[0]["Names"], "web");
    assert_eq!(list[0]["State"], "running");
    let pid = list[0]["Pid"].as_i64().unwrap();
    assert!(pid > 0);
    // That pid is the container's PID 1: the sleep.
    let cmdline = command_line_of(pid as u32);
    assert!(cmdline.starts_with("sleep"), "{cmdline}");

    assert_eq!(ok(s.rocker(&["kill", "web"])).trim(), "web");
    s.wait_state("web", "exited");
    assert_eq!(ok(s.rocker(&["ps", "-q"])).trim(), "");
    let all = ok(s.rocker(&["ps", "-a"]));
    assert!(all.contains("Exited (137)"), "{all}");
}

#[test]
fn logs_keep_both_streams_and_follow_until_the_exit() {
    let s = Store::new("lifecycle-logs");
    s.detach(
        &["--name", "talker", "--network", "none"],
        &["sh", "-c", "echo out; echo err >&2; sleep 1; echo late"],
    );
    let followed = s.rocker(&["logs", "-f", "talker"]);
    assert_eq!(code(&followed), 0, "{}", stderr(&followed));
    assert_eq!(stdout(&followed), "out\nlate\n");
    assert_eq!(stderr(&followed), "err\n");
    // By then it has exited.
    s.wait_state("talker", "exited");

    assert_eq!(ok(s.rocker(&["logs", "--tail", "1", "talker"])), "late\n");
    let stamped = ok(s.rocker(&["logs", "-t", "talker"]));
    let first = stamped.lines().next().unwrap();
    let (time, text) = first.split_once(' ').unwrap();
    assert!(time.ends_with('Z') && time.contains('T'), "{first}");
    assert_eq!(text, "out");

    // The file is docker's json-file format.
    let record = s.inspect("talker");
    let log = std::fs::read_to_string(record["LogPath"].as_str().unwrap()).unwrap();
    let entry: Value = serde_json::from_str(log.lines().next().unwrap()).unwrap();
    assert_eq!(entry["stream"], "stdout");
    assert_eq!(entry["log"], "out\n");
}

#[test]
fn log_driver_none_keeps_no_log_and_attach_still_sees_the_output() {
    let s = Store::new("lifecycle-log-none");
    // It speaks once attach has sent it a line: attach is there to hear.
    s.detach(
        &[
            "-i",
            "--name",
            "quiet",
            "--network",
            "none",
            "--log-driver",
            "none",
        ],
        &["sh", "-c", "read line; echo said; exit 4"],
    );
    let mut attached = s.spawn(&["attach", "quiet"], Stdio::piped());
    attached.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let output = wait_output(attached, Duration::from_secs(30));
    assert_eq!(code(&output), 4);
    assert_eq!(stdout(&output), "said\n");
    let logs = s.rocker(&["logs", "quiet"]);
    assert_eq!(code(&logs), 1);
    assert!(
        stderr(&logs).contains("does not support reading"),
        "{}",
        stderr(&logs)
    );
    assert_eq!(
        s.inspect("quiet")["HostConfig"]["LogConfig"]["Type"],
        "none"
    );
    let out = s.rocker(&["run", "--log-driver", "syslog", "--rootfs", "/", "true"]);
    assert_eq!(code(&out), 125);
    ok(s.rocker(&["rm", "quiet"]));
}

#[test]
fn stop_sends_the_stop_signal_then_kills_after_the_timeout() {
    let s = Store::new("lifecycle-stop");
    // A command that handles SIGTERM ends with its own status.
    s.detach(
        &["--name", "polite", "--network", "none"],
        &[
            "sh",
            "-c",
            "trap 'exit 3' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    s.wait_ready("polite");
    assert_eq!(ok(s.rocker(&["stop", "polite"])).trim(), "polite");
    assert_eq!(s.inspect("polite")["State"]["ExitCode"], 3);

    // One that ignores it is killed once -t runs out.
    s.detach(
        &["--name", "stubborn", "--network", "none"],
        &[
            "sh",
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    s.wait_ready("stubborn");
    let start = Instant::now();
    ok(s.rocker(&["stop", "-t", "1", "stubborn"]));
    assert!(start.elapsed() >= Duration::from_secs(1));
    let state = s.inspect("stubborn");
    assert_eq!(state["State"]["Status"], "exited");
    assert_eq!(state["State"]["ExitCode"], 137);

    // Stopping a stopped container succeeds, as in docker.
    assert_eq!(ok(s.rocker(&["stop", "stubborn"])), "stubborn\n");

    // --stop-timeout is the container's own -t: 1 s, not docker's 10.
    s.detach(
        &[
            "--name",
            "brief",
            "--network",
            "none",
            "--stop-timeout",
            "1",
        ],
        &[
            "sh",
            "-c",
            "trap '' TERM; echo ready; while :; do sleep 0.1; done",
        ],
    );
    s.wait_ready("brief");
    assert_eq!(s.inspect("brief")["Config"]["StopTimeout"], 1);
    let start = Instant::now();
    ok(s.rocker(&["stop", "brief"]));
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(8),
        "stop waited {waited:?}"
    );
    assert_eq!(s.inspect("brief")["State"]["ExitCode"], 137);
}

#[test]
fn kill_sends_a_named_signal() {
    let s = Store::new("lifecycle-kill");
    s.detach(
        &["--name", "k", "--network", "none"],
        &[
            "sh",
            "-c",
            "trap 'exit 7' USR1; echo ready; while :; do sleep 0.1; done",
        ],
    );
    s.wait_ready("k");
    ok(s.rocker(&["kill", "-s", "USR1", "k"]));
    s.wait_state("k", "exited");
    assert_eq!(s.inspect("k")["State"]["ExitCode"], 7);

    let bad = s.rocker(&["kill", "-s", "NOPE", "k"]);
    assert_eq!(code(&bad), 125);
    assert!(stderr(&bad).contains("unknown signal"), "{}", stderr(&bad));
    let stopped = s.rocker(&["kill", "k"]);
    assert_eq!(code(&stopped), 1, "docker's status");
    assert!(stderr(&stopped).contains("not running"));
}

#[test]
fn rm_refuses_a_running_container_unless_forced_and_frees_its_name() {
    let s = Store::new("lifecycle-rm");
    let id = s.detach(&["--name", "db", "--network", "none"], &["sleep", "300"]);

    let taken = s.rocker(&[
        "run",
        "--name",
        "db",
        "--rootfs",
        harness().rootfs.to_str().unwrap(),
        "true",
    ]);
    assert_eq!(code(&taken), 125);
    assert!(
        stderr(&taken).contains(&id[..12]) && stderr(&taken).contains("taken"),
        "{}",
        stderr(&taken)
    );

    let refused = s.rocker(&["rm", "db"]);
    assert_eq!(code(&refused), 125);
    assert!(stderr(&refused).contains("rm -f"), "{}", stderr(&refused));
    assert_eq!(ok(s.rocker(&["rm", "-f", "db"])).trim(), "db");
    assert!(s.ps_json().is_empty());
    assert!(!s.data.join("rocker/containers").join(&id).exists());

    // The name is free again; a stopped container goes with plain rm.
    s.detach(&["--name", "db", "--network", "none"], &["true"]);
    s.wait_state("db", "exited");
    ok(s.rocker(&["rm", "db"]));
    let gone = s.rocker(&["rm", "db"]);
    assert_eq!(code(&gone), 1, "docker's status for no such container");
    assert!(stderr(&gone).contains("no such container"));
}

#[test]
fn detached_with_rm_is_removed_when_it_exits() {
    let s = Store::new("lifecycle-drm");
    s.detach(&["--rm", "--network", "none"], &["sleep", "0.5"]);
    let start = Instant::now();
    while !s.ps_json().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "never removed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let left: Vec<_> = std::fs::read_dir(s.data.join("rocker/containers"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_failed_detached_start_fails_like_a_foreground_one() {
    let s = Store::new("lifecycle-fail");
    let rootfs = harness().rootfs.to_string_lossy().to_string();
    let out = s.rocker(&[
        "run",
        "-d",
        "--network",
        "none",
        "--rootfs",
        &rootfs,
        "no-such-program",
    ]);
    assert_eq!(code(&out), 127, "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
    assert!(
        s.ps_json().is_empty(),
        "a container that never started is not kept"
    );
}

#[test]
fn inspect_shows_config_state_mounts_and_ports() {
    let s = Store::new("lifecycle-inspect");
    let volume = harness().scratch("lifecycle-inspect-volume");
    let port = free_port();
    let volume_arg = format!("{}:/data:ro", volume.display());
    let publish = format!("127.0.0.1:{port}:80");
    let id = s.detach(
        &[
            "--name",
            "seen",
            "-e",
            "GREETING=hi",
            "-v",
            &volume_arg,
            "-p",
            &publish,
        ],
        &["sleep", "300"],
    );
    let info = s.inspect("seen");
    assert_eq!(info["Id"], id.as_str());
    assert_eq!(info["Name"], "/seen", "docker's names start with a slash");
    assert_eq!(info["Config"]["Cmd"], serde_json::json!(["sleep", "300"]));
    assert!(info["Config"]["Env"]
        .as_array()
        .unwrap()
        .contains(&Value::from("GREETING=hi")));
    assert_eq!(info["State"]["Status"], "running");
    assert!(info["State"]["Pid"].as_i64().unwrap() > 0);
    assert!(info["State"]["StartedAt"].as_str().unwrap().ends_with('Z'));
    assert_eq!(info["Mounts"][0]["Destination"], "/data");
    assert_eq!(info["Mounts"][0]["RW"], false);
    assert_eq!(info["NetworkSettings"]["Mode"], "slirp4netns");
    assert_eq!(info["NetworkSettings"]["IPAddress"], "10.0.2.100");
    // docker's shape: "80/tcp" -> [{HostIp, HostPort}], the port a string.
    assert_eq!(
        info["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"],
        port.to_string()
    );
    assert_eq!(
        info["NetworkSettings"]["Ports"]["80/tcp"][0]["HostIp"],
        "127.0.0.1"
    );
    assert_eq!(
        info["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"],
        port.to_string()
    );
    assert_eq!(
        info["Config"]["Image"],
        harness().rootfs.to_string_lossy().as_ref()
    );
    ok(s.rocker(&["rm", "-f", "seen"]));
}

/// Every field of `expected` (docker's) is in `got`, with the same JSON
/// type; a null in `expected` takes any type. Objects are compared key by
/// key, arrays by their first elements. The paths that differ.
fn shape_differences(expected: &Value, got: &Value, path: &str, out: &mut Vec<String>) {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    match (expected, got) {
        (Value::Null, _) => {}
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                match have.get(key) {
                    Some(found) => shape_differences(value, found, &format!("{path}.{key}"), out),
                    None => out.push(format!("{path}.{key}: missing")),
                }
            }
        }
        (Value::Array(want), Value::Array(have)) => {
            if let (Some(first), Some(found)) = (want.first(), have.first()) {
                shape_differences(first, found, &format!("{path}[0]"), out);
            } else if !want.is_empty() {
                out.push(format!("{path}: empty"));
            }
        }
        (want, have) if kind(want) != kind(have) => {
            out.push(format!(
                "{path}: {} where docker has {}",
                kind(have),
                kind(want)
            ));
        }
        _ => {}
    }
}

#[test]
fn inspect_has_dockers_fields_key_by_key() {
    // Built in: the VM runs this binary away from the source tree.
    let fixture = include_str!("fixtures/docker/container-inspect.json");
    let docker: Value = serde_json::from_str(fixture).unwrap();
    let s = Store::new("lifecycle-docker-shape");
    let publish = format!("127.0.0.1:{}:80", free_port());
    s.detach(
        &[
            "--name",
            "web",
            "-p",
            &publish,
            "-v",
            "data:/data",
            "-l",
            "tier=web",
        ],
        &["sleep", "300"],
    );
    let rocker = s.inspect("web");
    let mut differences = vec![];
    shape_differences(&docker, &rocker, "", &mut differences);
    assert!(
        differences.is_empty(),
        "not docker's shape:\n{}",
        differences.join("\n")
    );
    // And the values a docker script reads.
    assert_eq!(
        rocker["HostConfig"]["Binds"],
        serde_json::json!(["data:/data"])
    );
    assert_eq!(
        rocker["NetworkSettings"]["Networks"]["slirp4netns"]["IPAddress"],
        "10.0.2.100"
    );
    assert_eq!(rocker["NetworkSettings"]["Gateway"], "10.0.2.2");
    assert_eq!(rocker["Config"]["Labels"]["tier"], "web");
    ok(s.rocker(&["rm", "-f", "-v", "web"]));
}

#[test]
fn a_killed_monitor_leaves_a_stopped_container_that_rm_cleans_up() {
    let s = Store::new("lifecycle-monitor");
    s.detach(
        &["--name", "orphan", "--network", "none"],
        &["sleep", "300"],
    );
    let info = s.inspect("orphan");
    let init = info["State"]["Pid"].as_i64().unwrap() as i32;
    let status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let monitor: i32 = status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kill(Pid::from_raw(monitor), Signal::SIGKILL).unwrap();
    // The container dies with its monitor (parent-death signal).
    let start = Instant::now();
    while std::path::Path::new(&format!("/proc/{init}/cmdline")).exists()
        && std::fs::read(format!("/proc/{init}/cmdline")).is_ok_and(|c| !c.is_empty())
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the container outlived its monitor"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    s.wait_state("orphan", "stopped");
    let table = ok(s.rocker(&["ps", "-a"]));
    assert!(table.contains("exit status unknown"), "{table}");
    ok(s.rocker(&["rm", "orphan"]));
    s.detach(&["--name", "orphan", "--network", "none"], &["true"]);
}

#[test]
fn a_foreground_run_is_listed_while_it_runs_and_rm_removes_it_after() {
    let s = Store::new("lifecycle-foreground");
    let rootfs = harness().rootfs.to_string_lossy().to_string();
    let mut child = s
        .command(&[
            "run",
            "--rm",
            "--name",
            "fg",
            "--network",
            "none",
            "--rootfs",
            &rootfs,
            "sleep",
            "2",
        ])
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !ok(s.rocker(&["ps"])).contains("fg") {
        assert!(start.elapsed() < Duration::from_secs(10), "never listed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(wait_within(&mut child, Duration::from_secs(20)).success());
    assert!(s.ps_json().is_empty());

    ok(s.rocker(&[
        "run",
        "--name",
        "kept",
        "--network",
        "none",
        "--rootfs",
        &rootfs,
        "true",
    ]));
    let list = s.ps_json();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["State"], "exited");
    assert_eq!(list[0]["ExitCode"], 0);
    ok(s.rocker(&["container", "prune"]));
    assert!(s.ps_json().is_empty());

    // A command that is gone before its monitor records the start (a
    // zombie by then) is still recorded, not a failed run.
    for _ in 0..20 {
        ok(s.rocker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--rootfs",
            &rootfs,
            "true",
        ]));
    }
    assert!(s.ps_json().is_empty());
}

#[test]
fn ten_detached_containers_at_once_and_nothing_left_after_rm() {
    let s = Store::new("lifecycle-ten");
    let rootfs = harness().rootfs.to_string_lossy().to_string();
    let marker = "lifecycle-ten-marker";
    let children: Vec<_> = (0..10)
        .map(|i| {
            let name = format!("c{i}");
            let script = format!("sleep 300; echo {marker}");
            let args = [
                "run", "-d", "--name", &name, "--rootfs", &rootfs, "sh", "-c", &script,
            ];
            s.spawn(&args, Stdio::null())
        })
        .collect();
    let mut ids: Vec<String> = children
        .into_iter()
        .map(|child| {
            ok(wait_output(child, Duration::from_secs(60)))
                .trim()
                .to_string()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10);
    let running: Vec<Value> = s.ps_json();
    assert_eq!(running.len(), 10);
    assert!(
        running.iter().all(|c| c["State"] == "running"),
        "{running:?}"
    );
    // Each container's PID 1 (its monitor's command line says the same
    // after "rocker run").
    let shell = format!("sh -c sleep 300; echo {marker}");
    assert_eq!(processes_with(&shell).len(), 10);

    let names: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    let mut args = vec!["rm", "-f"];
    args.extend(names.iter().map(String::as_str));
    ok(s.rocker(&args));
    assert!(s.ps_json().is_empty());
    let start = Instant::now();
    while !processes_with(&shell).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "container processes left"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let data = s.data.to_string_lossy().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&data), "{mounts}");
    // Monitors and slirp4netns carry this test's data dir in their
    // environment; none may be left.
    let helpers = processes_with_env(&data);
    assert!(helpers.is_empty(), "processes left: {helpers:?}");
}

/// `exec` output and status, with stdin from `input`.
fn exec_with_input(s: &Store, args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = s.spawn(args, Stdio::piped());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    wait_output(child, Duration::from_secs(60))
}

#[test]
fn exec_joins_the_container_with_its_environment_and_returns_the_status() {
    let s = Store::new("lifecycle-exec");
    s.detach(
        &[
            "--name",
            "box",
            "--hostname",
            "boxhost",
            "-e",
            "FROM_RUN=run",
            "-e",
            "KEPT=yes",
            "-w",
            "/tmp",
        ],
        &["sh", "-c", "echo made-by-init > /tmp/mark; sleep 300"],
    );
    // Its processes, files, hostname, environment and working directory.
    let script = "cat /proc/1/cmdline | tr '\\0' ' '; echo; cat /tmp/mark; hostname; pwd; \
                  echo $FROM_RUN $KEPT; ps -o comm; cat /proc/self/cgroup | grep ^0::";
    let out = ok(s.rocker(&["exec", "-e", "FROM_RUN=exec", "box", "sh", "-c", script]));
    let lines: Vec<&str> = out.lines().collect();
    // PID 1 is the container's command (sh has exec'd its last one).
    assert_eq!(lines[0], "sleep 300 ", "{out}");
    assert_eq!(
        lines[1..5],
        ["made-by-init", "boxhost", "/tmp", "exec yes"],
        "{out}"
    );
    // Nothing of rocker's is visible in the container's pid namespace.
    assert!(!out.contains("rocker"), "{out}");
    assert!(out.ends_with("0::/\n"), "{out}");
    // Same capabilities and no_new_privs as the container's own process.
    let status = |pid: &str| {
        ok(s.rocker(&[
            "exec",
            "box",
            "grep",
            "-E",
            "^(CapBnd|CapEff|NoNewPrivs)",
            &format!("/proc/{pid}/status"),
        ]))
    };
    assert_eq!(status("self"), status("1"));
    assert!(status("self").contains("NoNewPrivs:\t1"));

    assert_eq!(
        ok(s.rocker(&["exec", "-w", "/etc", "box", "pwd"])),
        "/etc\n"
    );
    assert_eq!(code(&s.rocker(&["exec", "box", "sh", "-c", "exit 7"])), 7);
    assert_eq!(code(&s.rocker(&["exec", "box", "no-such-program"])), 127);
    let no_dir = s.rocker(&["exec", "-w", "/no/such/dir", "box", "true"]);
    assert_eq!(code(&no_dir), 126, "{}", stderr(&no_dir));
    assert!(stderr(&no_dir).contains("/no/such/dir"));
    // -u names the mapped user, by name or number; no other user exists.
    assert_eq!(
        ok(s.rocker(&["exec", "-u", "root", "box", "id", "-u"])),
        "0\n"
    );
    let other = s.rocker(&["exec", "-u", "1000", "box", "true"]);
    assert_eq!(code(&other), 125);
    assert!(
        stderr(&other).contains("maps only uid 0"),
        "{}",
        stderr(&other)
    );

    // stdin reaches the command with -i only.
    let piped = exec_with_input(&s, &["exec", "-i", "box", "cat"], "typed\n");
    assert_eq!(stdout(&piped), "typed\n");
    let closed = exec_with_input(&s, &["exec", "box", "cat"], "typed\n");
    assert_eq!(stdout(&closed), "");
    // -t: a pty from the container's devpts, and TERM.
    let tty = ok(s.rocker(&["exec", "-t", "box", "sh", "-c", "tty; echo $TERM"]));
    let tty = tty.replace('\r', "");
    assert!(tty.starts_with("/dev/pts/"), "{tty}");
    assert!(tty.ends_with("\nxterm\n"), "{tty}");

    ok(s.rocker(&["rm", "-f", "box"]));
    let gone = s.rocker(&["exec", "box", "true"]);
    assert_eq!(code(&gone), 1, "docker's status for no such container");
    assert!(
        stderr(&gone).contains("no such container"),
        "{}",
        stderr(&gone)
    );
}

#[test]
fn two_execs_run_at_once_and_end_with_their_container() {
    let s = Store::new("lifecycle-exec2");
    s.detach(&["--name", "pair", "--network", "host"], &["sleep", "300"]);
    // Each waits for the other's file: they only finish if both run at once.
    let wait_for = |mine: &str, theirs: &str| {
        format!("touch /tmp/{mine}; while [ ! -e /tmp/{theirs} ]; do sleep 0.05; done; echo {mine}")
    };
    let a_script = wait_for("a", "b");
    let b_script = wait_for("b", "a");
    let spawn = |script: &str| s.spawn(&["exec", "pair", "sh", "-c", script], Stdio::null());
    let (a, b) = (spawn(&a_script), spawn(&b_script));
    let (a, b) = (
        wait_output(a, Duration::from_secs(30)),
        wait_output(b, Duration::from_secs(30)),
    );
    assert_eq!(ok(a), "a\n");
    assert_eq!(ok(b), "b\n");

    // An exec still running when the container stops is killed with it.
    let long = s.spawn(&["exec", "pair", "sleep", "1017"], Stdio::null());
    let marker = "sleep 1017";
    wait_for_process(marker, Duration::from_secs(20));
    ok(s.rocker(&["stop", "-t", "1", "pair"]));
    let ended = wait_output(long, Duration::from_secs(20));
    assert_eq!(code(&ended), 137, "{}", stderr(&ended));
    assert!(processes_with(marker).is_empty());

    let stopped = s.rocker(&["exec", "pair", "true"]);
    assert_eq!(code(&stopped), 1, "docker's status");
    assert!(
        stderr(&stopped).contains("not running"),
        "{}",
        stderr(&stopped)
    );
    ok(s.rocker(&["rm", "pair"]));
}

#[test]
fn exec_reaches_a_container_whose_pid_1_is_the_init_reaper() {
    let s = Store::new("lifecycle-exec-init");
    s.detach(
        &["--name", "reaped", "--init", "--network", "none"],
        &["sleep", "300"],
    );
    // PID 1 is rocker's reaper (non-dumpable): exec joins through PID 2.
    let out = ok(s.rocker(&[
        "exec",
        "reaped",
        "sh",
        "-c",
        "cat /proc/2/cmdline; echo; echo $$",
    ]));
    assert_eq!(out, "sleep\u{0}300\u{0}\n3\n", "{out:?}");
    ok(s.rocker(&["rm", "-f", "reaped"]));
}

/// `wait` prints a detached container's status once it exits, for two
/// waiters at once and after the fact; `rename` keeps names unique.
#[test]
fn wait_prints_the_exit_status_and_rename_keeps_names_unique() {
    let s = Store::new("lifecycle-wait");
    s.detach(
        &["--name", "seven", "--network", "none"],
        &["sh", "-c", "sleep 1; exit 7"],
    );
    let first = s.spawn(&["wait", "seven"], Stdio::null());
    let second = s.spawn(&["wait", "seven"], Stdio::null());
    for waiter in [first, second] {
        assert_eq!(ok(wait_output(waiter, Duration::from_secs(30))), "7\n");
    }
    assert_eq!(ok(s.rocker(&["wait", "seven"])), "7\n");

    s.detach(&["--name", "other", "--network", "none"], &["true"]);
    let taken = s.rocker(&["rename", "seven", "other"]);
    assert_eq!(code(&taken), 125);
    assert!(stderr(&taken).contains("is taken"), "{}", stderr(&taken));
    ok(s.rocker(&["rename", "seven", "eight"]));
    assert_eq!(ok(s.rocker(&["wait", "eight"])), "7\n");
    assert_eq!(code(&s.rocker(&["wait", "seven"])), 1);
    // The old name is free again.
    s.detach(&["--name", "seven", "--network", "none"], &["true"]);
}

/// Names are found through the name index, which an older store lacks
/// (it is built from the records) and which a crash can leave stale.
#[test]
fn names_stay_unique_through_the_index_its_absence_and_stale_links() {
    let s = Store::new("lifecycle-names");
    let names = s.data.join("rocker/container-names");
    s.detach(&["--name", "kept", "--network", "none"], &["true"]);
    // The id in base64: short enough for ext4 to keep in the link's inode.
    let target = std::fs::read_link(names.join("kept")).unwrap();
    assert!(target.as_os_str().len() < 60, "{target:?}");
    // A link an older rocker made holds the hex id: it names the holder too.
    let hex_id = s.inspect("kept")["Id"].as_str().unwrap().to_string();
    std::fs::remove_file(names.join("kept")).unwrap();
    std::os::unix::fs::symlink(&hex_id, names.join("kept")).unwrap();
    let taken = s.rocker(&["create", "--name", "kept", "--rootfs", "/", "true"]);
    assert_eq!(code(&taken), 125);
    assert!(stderr(&taken).contains("is taken"), "{}", stderr(&taken));
    assert_eq!(s.state("kept"), "exited");
    // A store from before the index: lookups read the records, and the
    // next new container builds the index from them.
    std::fs::remove_dir_all(&names).unwrap();
    assert_eq!(s.state("kept"), "exited");
    let taken = s.rocker(&["create", "--name", "kept", "--rootfs", "/", "true"]);
    assert_eq!(code(&taken), 125);
    assert!(stderr(&taken).contains("is taken"), "{}", stderr(&taken));
    let linked = |name: &str| std::fs::symlink_metadata(names.join(name)).is_ok();
    assert!(linked("kept"), "the index was rebuilt");
    // A link to a container that is gone (a removal cut short) is stale.
    let id = s.inspect("kept")["Id"].as_str().unwrap().to_string();
    std::fs::remove_dir_all(s.data.join("rocker/containers").join(&id)).unwrap();
    assert_eq!(code(&s.rocker(&["inspect", "kept"])), 1);
    s.detach(&["--name", "kept", "--network", "none"], &["true"]);
    ok(s.rocker(&["rm", "kept"]));
    assert!(!linked("kept"), "rm releases the name");
}

/// `port` lists what a container publishes, or the host side of one port.
#[test]
fn port_lists_the_published_ports() {
    require("/usr/bin/slirp4netns", "slirp4netns");
    let s = Store::new("lifecycle-port");
    let (tcp, udp) = (free_port(), free_port());
    s.detach(
        &[
            "--name",
            "web",
            "-p",
            &format!("127.0.0.1:{tcp}:80"),
            "-p",
            &format!("{udp}:53/udp"),
        ],
        &["sleep", "600"],
    );
    let all = ok(s.rocker(&["port", "web"]));
    assert!(
        all.contains(&format!("80/tcp -> 127.0.0.1:{tcp}\n")),
        "{all}"
    );
    assert!(all.contains(&format!("53/udp -> 0.0.0.0:{udp}\n")), "{all}");
    assert_eq!(
        ok(s.rocker(&["port", "web", "80"])),
        format!("127.0.0.1:{tcp}\n")
    );
    assert_eq!(
        ok(s.rocker(&["port", "web", "53/udp"])),
        format!("0.0.0.0:{udp}\n")
    );
    let none = s.rocker(&["port", "web", "81"]);
    assert_eq!(code(&none), 1);
    assert!(
        stderr(&none).contains("no public port '81/tcp'"),
        "{}",
        stderr(&none)
    );
    ok(s.rocker(&["rm", "-f", "web"]));
}

/// `top` shows the container's processes, and only those, with ps options
/// passed on.
#[test]
fn top_lists_the_containers_processes_only() {
    let s = Store::new("lifecycle-top");
    s.detach(
        &["--name", "busy", "--network", "none"],
        &["sh", "-c", "sleep 1021 & sleep 1022; wait"],
    );
    wait_for_process("sleep 1022", Duration::from_secs(20));
    let out = ok(s.rocker(&["top", "busy"]));
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("PID") && lines[0].contains("CMD"),
        "{out}"
    );
    assert!(
        out.contains("sleep 1021") && out.contains("sleep 1022"),
        "{out}"
    );
    assert_eq!(lines.len(), 4, "the shell and two sleeps: {out}");
    // The pid inside comes first: the shell is the container's PID 1.
    assert!(lines[0].starts_with("CPID"), "{out}");
    let shell = lines
        .iter()
        .find(|l| l.contains("sh -c sleep 1021"))
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(shell.split_whitespace().next(), Some("1"), "{out}");
    let out = ok(s.rocker(&["top", "busy", "-o", "pid,args"]));
    assert!(out.contains("PID COMMAND"), "{out}");
    assert!(out.contains("sleep 1022"), "{out}");
    ok(s.rocker(&["rm", "-f", "busy"]));
    let gone = s.rocker(&["top", "busy"]);
    assert_eq!(code(&gone), 1);
}

/// `--stop-signal` is what `stop` sends first (a bad one fails before
/// anything starts), `--cidfile` gets the id (and must not exist), and
/// `-v SRC:DST:z` is taken as docker users write it.
#[test]
fn stop_signal_cidfile_and_selinux_volume_options() {
    let s = Store::new("lifecycle-run-flags");
    let rootfs = harness().rootfs.to_string_lossy().to_string();
    let bad = s.rocker(&["run", "--stop-signal", "NOPE", "--rootfs", &rootfs, "true"]);
    assert_eq!(code(&bad), 125);
    assert!(stderr(&bad).contains("unknown signal"), "{}", stderr(&bad));

    let cidfile = s.data.join("cid");
    let cid = cidfile.to_string_lossy().to_string();
    let id = s.detach(
        &[
            "--name",
            "quits",
            "--network",
            "none",
            "--stop-signal",
            "USR1",
            "--cidfile",
            &cid,
        ],
        &[
            "sh",
            "-c",
            "trap 'exit 9' USR1; echo ready; while :; do sleep 0.1; done",
        ],
    );
    assert_eq!(std::fs::read_to_string(&cidfile).unwrap(), id);
    assert_eq!(s.inspect("quits")["Config"]["StopSignal"], "SIGUSR1");
    s.wait_ready("quits");
    ok(s.rocker(&["stop", "quits"]));
    assert_eq!(s.inspect("quits")["State"]["ExitCode"], 9);
    let again = s.rocker(&["run", "--cidfile", &cid, "--rootfs", &rootfs, "true"]);
    assert_eq!(code(&again), 125);
    assert!(
        stderr(&again).contains("exists already"),
        "{}",
        stderr(&again)
    );

    let volume = format!("{}:/data:z", s.data.display());
    ok(s.rocker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        &volume,
        "--rootfs",
        &rootfs,
        "ls",
        "/data",
    ]));
}

/// `exec -d` returns once the command runs; the command goes on in the
/// container (and ends with it), and a command that cannot run fails as a
/// foreground exec would.
#[test]
fn exec_d_runs_the_command_in_the_background() {
    let s = Store::new("lifecycle-exec-d");
    s.detach(&["--name", "host", "--network", "none"], &["sleep", "600"]);
    let started = Instant::now();
    assert_eq!(
        ok(s.rocker(&[
            "exec",
            "-d",
            "host",
            "sh",
            "-c",
            "sleep 1; touch /tmp/done; sleep 1031"
        ])),
        ""
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "exec -d waited for the command"
    );
    wait_for_process("sleep 1031", Duration::from_secs(20));
    ok(s.rocker(&["exec", "host", "test", "-e", "/tmp/done"]));
    let missing = s.rocker(&["exec", "-d", "host", "no-such-command"]);
    assert_eq!(code(&missing), 127, "{}", stderr(&missing));
    ok(s.rocker(&["rm", "-f", "host"]));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with("sleep 1031").is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        processes_with("sleep 1031").is_empty(),
        "the exec outlived its container"
    );
}

/// `exec -u` reads the container's account files as `run` does: bounded,
/// and never from a FIFO the container put in their place (which hung it).
#[test]
fn exec_reads_the_containers_account_files_safely() {
    let s = Store::new("lifecycle-exec-passwd");
    let root = harness().rootfs_copy("fifo-passwd");
    let root = root.to_string_lossy().to_string();
    let id = ok(s.rocker(&[
        "run",
        "-d",
        "--name",
        "tricky",
        "--network",
        "none",
        "--rootfs",
        &root,
        "sh",
        "-c",
        "rm /etc/passwd && mkfifo /etc/passwd && touch /tmp/ready && sleep 600",
    ]));
    assert_eq!(id.trim().len(), 64);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ok(s.rocker(&[
        "exec",
        "tricky",
        "sh",
        "-c",
        "test -e /tmp/ready && echo yes || true",
    ]))
    .contains("yes")
    {
        assert!(Instant::now() < deadline, "the container never got ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = s.rocker(&["exec", "-u", "app", "tricky", "id"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("/etc/passwd"), "{}", stderr(&out));
    ok(s.rocker(&["rm", "-f", "tricky"]));
}

#[test]
fn create_start_and_restart() {
    let s = Store::new("lifecycle-start");
    let rootfs = harness().rootfs.to_string_lossy().to_string();
    let create = |name: &str, extra: &[&str], command: &[&str]| {
        let mut args = vec!["create", "--name", name, "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--rootfs", &rootfs]);
        args.extend_from_slice(command);
        ok(s.rocker(&args))
    };
    create("sleeper", &[], &["sleep", "300"]);
    assert_eq!(s.state("sleeper"), "created");
    assert_eq!(ok(s.rocker(&["start", "sleeper"])), "sleeper\n");
    s.wait_state("sleeper", "running");
    let pid = s.inspect("sleeper")["State"]["Pid"].as_i64().unwrap();
    // Starting a running container changes nothing.
    assert_eq!(ok(s.rocker(&["start", "sleeper"])), "sleeper\n");
    assert_eq!(s.inspect("sleeper")["State"]["Pid"].as_i64().unwrap(), pid);

    assert_eq!(
        ok(s.rocker(&["restart", "-t", "1", "sleeper"])),
        "sleeper\n"
    );
    s.wait_state("sleeper", "running");
    let restarted = s.inspect("sleeper")["State"]["Pid"].as_i64().unwrap();
    assert_ne!(restarted, pid, "a new process after restart");

    // A -t container starts in the background with a terminal of its own.
    create("tty", &["-t"], &["sh", "-c", "tty; echo ready; sleep 60"]);
    ok(s.rocker(&["start", "tty"]));
    s.wait_ready("tty");
    assert!(ok(s.rocker(&["logs", "tty"])).starts_with("/dev/pts/0"));
    let first = s.inspect("tty")["State"]["Pid"].as_i64().unwrap();
    ok(s.rocker(&["restart", "-t", "0", "tty"]));
    s.wait_state("tty", "running");
    assert_ne!(s.inspect("tty")["State"]["Pid"].as_i64().unwrap(), first);
    // What start refuses, and says why.
    let output = s.rocker(&["start", "-a", "sleeper", "tty"]);
    assert!(
        stderr(&output).contains("takes one container"),
        "{}",
        stderr(&output)
    );
    let output = s.rocker(&["start", "-i", "tty"]);
    assert!(
        stderr(&output).contains("-i needs -a"),
        "{}",
        stderr(&output)
    );
    let output = s.rocker(&["start", "nothing-here"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));

    ok(s.rocker(&["rm", "-f", "sleeper", "tty"]));
    assert!(s.ps_json().is_empty());
    assert_eq!(processes_with_env(&s.data.to_string_lossy()), vec![]);
}

#[test]
fn pause_holds_a_counter_that_unpause_lets_go_on() {
    let s = Store::new("lifecycle-pause");
    let out = harness().scratch("pause-out");
    let volume = format!("{}:/out", out.display());
    s.detach(
        &["--name", "counter", "--network", "none", "-v", &volume],
        // Bounded: a failed test must not leave it spinning for ever.
        &[
            "timeout",
            "120",
            "sh",
            "-c",
            "i=0; while :; do i=$((i+1)); echo $i > /out/n.tmp; mv /out/n.tmp /out/n; done",
        ],
    );
    let count = || -> u64 {
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(out.join("n")).unwrap_or_default();
            if let Ok(n) = text.trim().parse() {
                return n;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "no count");
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    count();
    assert_eq!(ok(s.rocker(&["pause", "counter"])), "counter\n");
    let held = count();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(count(), held, "the counter went on while paused");
    assert_eq!(s.state("counter"), "paused");
    assert_eq!(s.inspect("counter")["State"]["Paused"], true);
    let row = ok(s.rocker(&["ps"]));
    assert!(row.contains("(Paused)"), "{row}");
    let output = s.rocker(&["exec", "counter", "true"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
    assert!(stderr(&output).contains("unpause"), "{}", stderr(&output));
    assert_eq!(code(&s.rocker(&["pause", "counter"])), 1, "paused twice");

    assert_eq!(ok(s.rocker(&["unpause", "counter"])), "counter\n");
    let start = Instant::now();
    while count() == held {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the counter stays held"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(s.state("counter"), "running");
    assert_eq!(code(&s.rocker(&["unpause", "counter"])), 1, "not paused");

    // A paused container stops as any other.
    ok(s.rocker(&["pause", "counter"]));
    ok(s.rocker(&["stop", "-t", "2", "counter"]));
    assert_eq!(s.state("counter"), "exited");
    ok(s.rocker(&["rm", "counter"]));
    assert_eq!(processes_with_env(&s.data.to_string_lossy()), vec![]);
}

#[test]
fn restart_policies_start_a_container_again_until_stop() {
    let s = Store::new("lifecycle-restart");
    let out = harness().scratch("restart-out");
    let volume = format!("{}:/out", out.display());
    let runs = |file: &str| {
        std::fs::read_to_string(out.join(file))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let wait_until = |what: &str, done: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(20), "never: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // on-failure:2 runs a failing command three times, then it rests.
    s.detach(
        &[
            "--name",
            "flaky",
            "--network",
            "none",
            "--restart",
            "on-failure:2",
            "-v",
            &volume,
        ],
        &["sh", "-c", "echo run >> /out/flaky; exit 3"],
    );
    wait_until("flaky exits for good", &|| s.state("flaky") == "exited");
    assert_eq!(runs("flaky"), 3);
    let info = s.inspect("flaky");
    assert_eq!(info["RestartCount"], 2);
    assert_eq!(info["HostConfig"]["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(info["State"]["ExitCode"], 3);
    assert_eq!(ok(s.rocker(&["wait", "flaky"])), "3\n");

    // always goes on after a success, shows Restarting between runs, and
    // stop ends it.
    s.detach(
        &[
            "--name",
            "steady",
            "--network",
            "none",
            "--restart",
            "always",
            "-v",
            &volume,
        ],
        &["sh", "-c", "echo run >> /out/steady; sleep 0.1"],
    );
    wait_until("three runs", &|| runs("steady") >= 3);
    wait_until("Restarting in ps", &|| {
        ok(s.rocker(&["ps", "-a"])).contains("Restarting (0)")
    });
    ok(s.rocker(&["stop", "-t", "1", "steady"]));
    let stopped_at = runs("steady");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(runs("steady"), stopped_at, "it ran again after stop");
    assert_eq!(s.state("steady"), "exited");
    assert!(s.inspect("steady")["RestartCount"].as_u64().unwrap() >= 2);

    // What --restart refuses.
    let rootfs = harness().rootfs.to_string_lossy().to_string();
    for (extra, reason) in [(&["-d", "--rm"][..], "conflict"), (&[][..], "needs -d")] {
        let mut args = vec!["run", "--restart", "always"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--rootfs", &rootfs, "true"]);
        let output = s.rocker(&args);
        assert_eq!(code(&output), 125);
        assert!(stderr(&output).contains(reason), "{}", stderr(&output));
    }
    ok(s.rocker(&["rm", "flaky", "steady"]));
    assert_eq!(processes_with_env(&s.data.to_string_lossy()), vec![]);
}

#[test]
fn generate_systemd_writes_a_unit_that_starts_and_stops_the_container() {
    let s = Store::new("lifecycle-systemd");
    let rootfs = harness().rootfs.to_string_lossy().to_string();
    ok(s.rocker(&[
        "create",
        "--name",
        "svc",
        "--restart",
        "on-failure:4",
        "--rootfs",
        &rootfs,
        "sleep",
        "5",
    ]));
    let unit = ok(s.rocker(&["generate", "systemd", "-t", "3", "svc"]));
    let binary = harness().binary.to_string_lossy().to_string();
    for line in [
        "[Service]".to_string(),
        "Restart=on-failure".to_string(),
        "StartLimitBurst=5".to_string(),
        format!("ExecStart={binary} start -a svc"),
        format!("ExecStop={binary} stop -t 3 svc"),
        "WantedBy=default.target".to_string(),
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing:\n{unit}");
    }
    // The unit's own commands do what it says.
    let start = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let args: Vec<&str> = start.split(' ').skip(1).collect();
    let mut service = s.command(&args);
    service.stdout(Stdio::null()).stderr(Stdio::null());
    let mut child = service.spawn().unwrap();
    s.wait_state("svc", "running");
    ok(s.rocker(&["stop", "-t", "3", "svc"]));
    let _ = wait_within(&mut child, Duration::from_secs(30));
    assert_eq!(s.state("svc"), "exited");

    let dir = harness().scratch("systemd-files");
    let mut files = s.command(&["generate", "systemd", "--files", "svc"]);
    files.current_dir(&dir);
    let out = ok(output_within(files, Duration::from_secs(30)));
    assert_eq!(
        out.trim(),
        dir.join("container-svc.service").to_string_lossy()
    );
    assert!(dir.join("container-svc.service").is_file());
    ok(s.rocker(&["rm", "svc"]));
}

#[test]
fn a_stop_whose_end_is_not_recorded_in_time_says_so() {
    let s = Store::new("lifecycle-stuck-monitor");
    let id = s.detach(&["--name", "stuck", "--network", "none"], &["sleep", "300"]);
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(
            harness()
                .base
                .join("run/rocker/containers")
                .join(&id)
                .join("state.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let monitor = Pid::from_raw(state["monitor"]["pid"].as_i64().unwrap() as i32);
    // A monitor that cannot run cannot record the end.
    kill(monitor, Signal::SIGSTOP).unwrap();
    let output = s.rocker(&["stop", "-t", "1", "stuck"]);
    kill(monitor, Signal::SIGCONT).unwrap();
    assert_eq!(code(&output), 125, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("did not record it within"),
        "{}",
        stderr(&output)
    );
    s.wait_state("stuck", "exited");
    ok(s.rocker(&["rm", "stuck"]));
}

#[test]
fn damaged_records_are_shown_as_such_and_removable() {
    let s = Store::new("lifecycle-damaged");
    let rootfs = harness().rootfs.to_string_lossy().to_string();
    let dir = |id: &str| s.data.join("rocker/containers").join(id);
    let exited = |name: &str| {
        ok(s.rocker(&[
            "run",
            "--name",
            name,
            "--network",
            "none",
            "--rootfs",
            &rootfs,
            "true",
        ]));
        s.inspect(name)["Id"].as_str().unwrap().to_string()
    };
    let garbled = exited("garbled");
    let truncated = exited("truncated");
    let short = exited("short");
    let running = s.detach(&["--name", "alive", "--network", "none"], &["sleep", "300"]);
    // As a power cut can leave them: an empty status, half a record.
    std::fs::write(dir(&garbled).join("status.json"), "").unwrap();
    std::fs::write(dir(&running).join("status.json"), "{\"sta").unwrap();
    let config = std::fs::read_to_string(dir(&truncated).join("config.json")).unwrap();
    std::fs::write(
        dir(&truncated).join("config.json"),
        &config[..config.len() / 2],
    )
    .unwrap();
    // Valid JSON, a damaged id (code that slices ids must not panic).
    let record = std::fs::read_to_string(dir(&short).join("config.json")).unwrap();
    std::fs::write(
        dir(&short).join("config.json"),
        record.replace(&short, "c0ffee"),
    )
    .unwrap();

    let listed = s.rocker(&["ps", "-a"]);
    let table = ok(listed);
    assert!(table.contains("Damaged"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.contains("alive") && l.contains("Up ")),
        "{table}"
    );
    assert!(!table.contains("truncated"), "{table}");
    assert_eq!(s.state("garbled"), "damaged");
    assert_eq!(
        s.state("alive"),
        "running",
        "what runs still counts as running"
    );

    ok(s.rocker(&["rm", "garbled"]));
    ok(s.rocker(&["rm", &truncated[..12]]));
    ok(s.rocker(&["rm", &short[..12]]));
    ok(s.rocker(&["rm", "-f", "alive"]));
    for id in [&garbled, &truncated, &short, &running] {
        assert!(!dir(id).exists(), "{id} left");
    }
    assert!(s.ps_json().is_empty());
}

#[test]
fn prune_and_rm_leave_a_container_that_is_being_started() {
    let s = Store::new("lifecycle-starting");
    let rootfs = harness().rootfs.to_string_lossy().to_string();
    let id = ok(s.rocker(&[
        "create",
        "--name",
        "booting",
        "--network",
        "none",
        "--rootfs",
        &rootfs,
        "true",
    ]));
    let id = id.trim();
    // As while a run sets it up: recorded, not started, its maker alive.
    let mut maker = harness().command_as_user("sleep");
    maker.arg("30");
    let mut maker = spawn_quiet(maker);
    let creator = s.data.join("rocker/containers").join(id).join("creator");
    std::fs::write(&creator, maker.id().to_string()).unwrap();

    ok(s.rocker(&["container", "prune"]));
    assert_eq!(
        s.state("booting"),
        "created",
        "prune took a starting container"
    );
    let output = s.rocker(&["rm", "booting"]);
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains("being started"),
        "{}",
        stderr(&output)
    );

    // Its maker gone, it is a created container like any: prune takes it.
    let _ = maker.kill();
    let _ = maker.wait();
    assert_eq!(ok(s.rocker(&["container", "prune"])).trim(), id);
    assert!(s.ps_json().is_empty());
}

#[test]
fn another_session_sees_the_same_containers_whatever_its_runtime_dir() {
    let s = Store::new("lifecycle-sessions");
    let rootfs = harness().rootfs.to_string_lossy().to_string();
    let session = |runtime: Option<&std::path::Path>, args: &[&str]| {
        let mut command = match runtime {
            Some(runtime) => harness().rocker_with_runtime(runtime),
            None => {
                let mut command = harness().rocker();
                command.env_remove("XDG_RUNTIME_DIR");
                command
            }
        };
        command.env("XDG_DATA_HOME", &s.data).args(args);
        output_within(command, Duration::from_secs(60))
    };
    // Started where there is no XDG_RUNTIME_DIR (cron, su, a CI runner).
    ok(session(
        None,
        &[
            "run",
            "-d",
            "--name",
            "cron-job",
            "--network",
            "none",
            "--rootfs",
            &rootfs,
            "sleep",
            "300",
        ],
    ));
    // Seen from a desktop session with a runtime dir of its own.
    let desktop = harness().scratch("sessions-desktop-run");
    let desktop = Some(desktop.as_path());
    let listed = ok(session(desktop, &["ps"]));
    assert!(
        listed.contains("cron-job") && listed.contains("Up "),
        "{listed}"
    );
    assert_eq!(
        ok(session(desktop, &["exec", "cron-job", "echo", "reached"])),
        "reached\n"
    );
    let output = session(desktop, &["rm", "cron-job"]);
    assert_ne!(
        code(&output),
        0,
        "rm of a running container from another session"
    );
    ok(session(desktop, &["stop", "-t", "1", "cron-job"]));
    assert_eq!(s.state("cron-job"), "exited");
    ok(session(desktop, &["rm", "cron-job"]));
    assert_eq!(processes_with_env(&s.data.to_string_lossy()), vec![]);
}

#[test]
fn stats_stops_streaming_once_its_containers_end() {
    let s = Store::new("lifecycle-stats-end");
    s.detach(&["--name", "brief", "--network", "none"], &["sleep", "2"]);
    let start = Instant::now();
    let output = output_within(
        s.command(&["stats", "--format", "json", "brief"]),
        Duration::from_secs(30),
    );
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "stats went on after the container ended"
    );
    assert!(stdout(&output).contains("brief"), "{}", stdout(&output));
    ok(s.rocker(&["rm", "brief"]));
}

/// Waits until `attach` is connected and greeted: it blocks the signals it
/// passes on (SIGINT among them) from then on.
fn wait_until_attached(attach: &Child) {
    let blocks_sigint = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|status| {
                let mask = status.lines().find_map(|l| l.strip_prefix("SigBlk:"))?;
                u64::from_str_radix(mask.trim(), 16).ok()
            })
            .is_some_and(|mask| mask & (1 << (libc::SIGINT - 1)) != 0)
    };
    let start = Instant::now();
    while !blocks_sigint(attach.id()) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "attach never got ready"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn attach_and_start_ai_pass_input_to_a_di_container() {
    let s = Store::new("lifecycle-attach-input");
    s.detach(
        &["-i", "--name", "reader", "--network", "none"],
        &[
            "sh",
            "-c",
            "echo ready; while read l; do echo got:$l; [ \"$l\" = bye ] && exit 6; done; exit 1",
        ],
    );
    s.wait_ready("reader");
    // --no-stdin: output only, whatever this one's stdin holds.
    let mut watcher = s.spawn(&["attach", "--no-stdin", "reader"], Stdio::piped());
    wait_until_attached(&watcher);
    watcher
        .stdin
        .take()
        .unwrap()
        .write_all(b"ignored\n")
        .unwrap();
    // Input from one client; its end of file leaves the container's stdin
    // open for the next, as docker does.
    let mut first = s.spawn(&["attach", "reader"], Stdio::piped());
    wait_until_attached(&first);
    first.stdin.take().unwrap().write_all(b"one\n").unwrap();
    s.wait_ready_for("reader", "got:one");
    assert_eq!(s.state("reader"), "running");
    // start -ai of a running container attaches to it.
    let mut last = s.spawn(&["start", "-ai", "reader"], Stdio::piped());
    wait_until_attached(&last);
    last.stdin.take().unwrap().write_all(b"bye\n").unwrap();
    for client in [last, first, watcher] {
        let output = wait_output(client, Duration::from_secs(30));
        assert_eq!(code(&output), 6, "{}", stderr(&output));
        assert!(
            stdout(&output).ends_with("got:bye\n"),
            "{}",
            stdout(&output)
        );
    }
    let logs = ok(s.rocker(&["logs", "reader"]));
    assert_eq!(logs, "ready\ngot:one\ngot:bye\n");
    ok(s.rocker(&["rm", "reader"]));
}

#[test]
fn attach_follows_a_detached_container_and_exits_with_its_status() {
    let s = Store::new("lifecycle-attach");
    // Counts for 5 s: attach, whenever it comes, sees the rest and the end.
    s.detach(
        &["--name", "talker", "--network", "none"],
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 50 ]; do i=$((i+1)); echo $i; sleep 0.1; done; echo two >&2; exit 5",
        ],
    );
    let attached = spawn_collecting(s.command(&["attach", "talker"]));
    let output = wait_output(attached, Duration::from_secs(30));
    assert_eq!(code(&output), 5, "{}", stderr(&output));
    let seen = stdout(&output);
    assert!(seen.ends_with("49\n50\n"), "{seen}");
    assert_eq!(stderr(&output), "two\n");
    // The log has it all, attached or not.
    let logs = s.rocker(&["logs", "talker"]);
    assert!(stdout(&logs).starts_with("1\n2\n") && stdout(&logs).ends_with("50\n"));
    assert_eq!(stderr(&logs), "two\n");

    // Ctrl-C to attach goes on to the container.
    s.detach(
        &["--name", "trapper", "--network", "none"],
        &[
            "sh",
            "-c",
            "trap 'echo got-int; exit 9' INT; echo ready; while :; do sleep 0.1; done",
        ],
    );
    s.wait_ready("trapper");
    let attached = spawn_collecting(s.command(&["attach", "trapper"]));
    wait_until_attached(&attached);
    kill(Pid::from_raw(attached.id() as i32), Signal::SIGINT).unwrap();
    let output = wait_output(attached, Duration::from_secs(30));
    assert_eq!(code(&output), 9, "{}", stderr(&output));
    assert!(stdout(&output).contains("got-int"), "{}", stdout(&output));

    let output = s.rocker(&["attach", "talker"]);
    assert_eq!(code(&output), 1, "not running: {}", stderr(&output));
    ok(s.rocker(&["rm", "talker", "trapper"]));
}

#[test]
fn go_templates_format_inspect_and_ps() {
    let s = Store::new("lifecycle-templates");
    let id = s.detach(
        &[
            "--name",
            "templated",
            "--label",
            "team=core",
            "--network",
            "none",
        ],
        &["sleep", "30"],
    );
    let inspected = ok(s.rocker(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.Id}} {{index .Config.Labels \"team\"}} {{json .State.Running}}",
        "templated",
    ]));
    assert_eq!(inspected, format!("running {id} core true\n"));
    assert_eq!(
        ok(s.rocker(&[
            "ps",
            "--format",
            "{{.Names}}|{{.ID}}|{{.Labels}}|{{.State}}"
        ])),
        format!("templated|{}|team=core|running\n", &id[..12])
    );
    let table = ok(s.rocker(&["ps", "--format", "table {{.Names}}\\t{{.Status}}"]));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAMES", "STATUS"]
    );
    assert!(
        lines[1].starts_with("templated ") && lines[1].contains("Up "),
        "{table}"
    );
    // A template that does not parse says where.
    let out = s.rocker(&["inspect", "-f", "{{.State", "templated"]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("--format template"),
        "{}",
        stderr(&out)
    );
    ok(s.rocker(&["rm", "-f", "templated"]));
}

#[test]
fn ps_filters_last_and_no_trunc() {
    let s = Store::new("lifecycle-ps-filters");
    let rootfs = harness().rootfs.to_string_lossy().to_string();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--network", "none"];
        all.extend_from_slice(args);
        s.rocker(&all)
    };
    run(&[
        "--name", "alpha", "--label", "tier=web", "--rootfs", &rootfs, "true",
    ]);
    run(&["--name", "beta", "--rootfs", &rootfs, "sh", "-c", "exit 3"]);
    let id = s.detach(&["--name", "gamma", "--label", "tier=db"], &["sleep", "30"]);
    let names = |filters: &[&str]| {
        let mut args = vec!["ps", "--format", "{{.Names}}"];
        args.extend_from_slice(filters);
        ok(s.rocker(&args))
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&[]), ["gamma"]);
    // A status filter looks at every state; filters of one key are
    // alternatives, of different keys all apply.
    assert_eq!(names(&["--filter", "status=exited"]), ["beta", "alpha"]);
    assert_eq!(names(&["-f", "exited=3"]), ["beta"]);
    assert_eq!(names(&["-a", "-f", "label=tier"]), ["gamma", "alpha"]);
    assert_eq!(
        names(&[
            "-a",
            "-f",
            "label=tier=db",
            "-f",
            "label=tier=web",
            "-f",
            "name=^al"
        ]),
        ["alpha"]
    );
    assert_eq!(
        names(&["-f", "id=", "-f", &format!("id={}", &id[..6])]),
        ["gamma"]
    );
    assert_eq!(names(&["-n", "2"]), ["gamma", "beta"]);
    assert_eq!(ok(s.rocker(&["ps", "-l", "-q", "--no-trunc"])).trim(), id);
    let out = s.rocker(&["ps", "--filter", "colour=red"]);
    assert!(
        stderr(&out).contains("invalid filter 'colour'"),
        "{}",
        stderr(&out)
    );
    ok(s.rocker(&["rm", "-f", "alpha", "beta", "gamma"]));
}
