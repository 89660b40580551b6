//! What confines a container besides its namespaces: the syscall filter,
//! the capabilities it keeps, and root emulation in front of both. (The
//! package-manager side of root emulation runs in tests/debian.rs.)

mod common;

use std::time::Duration;

use common::*;

/// `rocker run OPTIONS --network none --tmpfs /tmp --rootfs BUSYBOX sh -c SCRIPT`.
fn run_script(options: &[&str], script: &str) -> std::process::Output {
    let h = harness();
    let mut command = h.rocker();
    command
        .arg("run")
        .args(options)
        .args(["--network", "none", "--tmpfs", "/tmp", "--rootfs"])
        .arg(&h.rootfs)
        .args(["sh", "-c", script]);
    output_within(command, Duration::from_secs(60))
}

/// A line of /proc/self/status inside a container run with `options`.
fn status_line(options: &[&str], field: &str) -> String {
    let out = ok(run_script(
        options,
        &format!("grep '^{field}:' /proc/self/status"),
    ));
    out.split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn every_container_gets_the_filter_and_nested_user_namespaces_are_refused() {
    assert_eq!(status_line(&[], "Seccomp"), "2");
    // --init's PID 1 (rocker's reaper) is filtered too.
    let out = ok(run_script(&["--init"], "grep '^Seccomp:' /proc/1/status"));
    assert_eq!(out, "Seccomp:\t2\n");
    let out = run_script(&[], "unshare -U true");
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn unconfined_and_privileged_lift_the_filter() {
    for options in [
        &["--security-opt", "seccomp=unconfined"][..],
        &["--privileged"][..],
    ] {
        ok(run_script(options, "unshare -U true"));
    }
    // Root emulation is a filter too: only without it is there none.
    let none = [
        "--security-opt",
        "seccomp=unconfined",
        "--security-opt",
        "root-emulation=false",
    ];
    assert_eq!(status_line(&none, "Seccomp"), "0");
    assert_eq!(status_line(&["--privileged"], "CapEff"), "000001ffffffffff");
}

#[test]
fn a_json_profile_answers_with_its_own_errno() {
    let h = harness();
    let dir = h.scratch("profiles");
    let deny_mkdir = dir.join("deny-mkdir.json");
    std::fs::write(
        &deny_mkdir,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}
        ]}"#,
    )
    .unwrap();
    let notify = dir.join("notify.json");
    std::fs::write(
        &notify,
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["ptrace"], "action": "SCMP_ACT_NOTIFY"}
        ]}"#,
    )
    .unwrap();
    let docker_default = dir.join("docker-default.json");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/seccomp/docker-default.json"
        ),
        &docker_default,
    )
    .unwrap();
    h.give_tree(&dir);
    let option = |path: &std::path::Path| format!("seccomp={}", path.display());

    let out = run_script(&["--security-opt", &option(&deny_mkdir)], "mkdir /tmp/x");
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        stderr(&out)
    );
    let out = run_script(&["--security-opt", &option(&notify)], "true");
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("syscalls[0] (ptrace)") && stderr(&out).contains("SCMP_ACT_NOTIFY"),
        "{}",
        stderr(&out)
    );
    let out = run_script(
        &["--security-opt", &option(&docker_default)],
        "unshare -U true",
    );
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    ok(run_script(
        &["--security-opt", &option(&docker_default)],
        "true",
    ));
}

#[test]
fn capabilities_follow_cap_add_and_cap_drop() {
    let with_net_raw =
        u64::from_str_radix(&status_line(&["--cap-add", "NET_RAW"], "CapEff"), 16).unwrap();
    assert_ne!(with_net_raw & (1 << 13), 0, "{with_net_raw:x}");
    let default = u64::from_str_radix(&status_line(&[], "CapEff"), 16).unwrap();
    assert_eq!(default & (1 << 13), 0, "{default:x}");
    let without_chown =
        u64::from_str_radix(&status_line(&["--cap-drop", "cap_chown"], "CapEff"), 16).unwrap();
    assert_eq!(without_chown, default & !1);
    assert_eq!(
        status_line(&["--cap-drop", "ALL"], "CapEff"),
        "0000000000000000"
    );
    let out = run_script(&["--cap-add", "FLYING"], "true");
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("unknown capability"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn root_emulation_fakes_chown_and_device_nodes_but_makes_fifos() {
    let out = ok(run_script(
        &[],
        "mknod /tmp/fifo p && ls -l /tmp/fifo | cut -c1; \
         mknod /tmp/null c 1 3 && echo device-faked; test -e /tmp/null || echo nothing-made; \
         touch /tmp/f && chown 1000:50 /tmp/f && echo chown-faked; stat -c %u:%g /tmp/f; \
         su -s /bin/sh app -c 'id -u'",
    ));
    assert_eq!(
        out, "p\ndevice-faked\nnothing-made\nchown-faked\n0:0\n0\n",
        "{out}"
    );
    // Without it, and for a user who is not root, the errors are honest.
    let out = run_script(
        &["--security-opt", "root-emulation=false"],
        "touch /tmp/f; chown 1000 /tmp/f",
    );
    assert!(
        stderr(&out).contains("Invalid argument"),
        "{}",
        stderr(&out)
    );
    let out = run_script(&["-u", "1000"], "mknod /tmp/null c 1 3");
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn exec_gets_the_containers_filter_and_capabilities() {
    let h = harness();
    let data = h.scratch("exec-data");
    let rocker = |args: &[&str]| {
        let mut command = h.rocker_in(&data);
        command.args(args);
        output_within(command, Duration::from_secs(60))
    };
    let rootfs = h.rootfs.to_string_lossy().to_string();
    ok(rocker(&[
        "run",
        "-d",
        "--name",
        "confined",
        "--network",
        "none",
        "--cap-drop",
        "ALL",
        "--rootfs",
        &rootfs,
        "sleep",
        "600",
    ]));
    let out = ok(rocker(&[
        "exec",
        "confined",
        "grep",
        "-E",
        "^(Seccomp|CapEff):",
        "/proc/self/status",
    ]));
    assert_eq!(out, "CapEff:\t0000000000000000\nSeccomp:\t2\n", "{out}");
    let out = rocker(&["exec", "confined", "unshare", "-U", "true"]);
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    ok(rocker(&["rm", "-f", "confined"]));
}
