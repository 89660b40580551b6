//! `rocker info` reports what this host offers, checked live.

mod common;

use std::time::Duration;

use common::*;

fn info(format: &str) -> String {
    let mut command = harness().rocker();
    command.args(["info", "--format", format]);
    ok(output_within(command, Duration::from_secs(60)))
}

#[test]
fn json_report_matches_the_host() {
    let h = harness();
    let report: serde_json::Value = serde_json::from_str(&info("json")).unwrap();
    assert_eq!(report["uid"], h.uid);
    assert_eq!(report["user_namespaces"]["ok"], true, "{report:#}");
    let runtime = h.base.join("run/rocker");
    assert_eq!(report["directories"]["runtime"], runtime.to_str().unwrap());
    assert_eq!(
        report["directories"]["data"],
        h.base.join("data/rocker").to_str().unwrap()
    );

    // Each answer agrees with what the test sees for itself.
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let layout = if mounts.contains(" /sys/fs/cgroup cgroup2 ") {
        "v2"
    } else if mounts.contains(" /sys/fs/cgroup/unified cgroup2 ") {
        "hybrid"
    } else {
        "v1"
    };
    assert_eq!(report["cgroups"]["layout"], layout);
    let manager = runtime.parent().unwrap().join("systemd/private").exists();
    assert_eq!(report["cgroups"]["systemd_user_manager"]["ok"], manager);
    let installed = |p: &str| std::path::Path::new(p).exists();
    assert_eq!(
        report["slirp4netns"]["ok"],
        installed("/usr/bin/slirp4netns")
    );
    assert_eq!(
        report["fuse_overlayfs"]["ok"],
        installed("/usr/bin/fuse-overlayfs")
    );
    let world_rw = |p: &str| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o006 == 0o006)
    };
    assert_eq!(report["dev_fuse"]["ok"], world_rw("/dev/fuse"));
    assert_eq!(report["dev_net_tun"]["ok"], world_rw("/dev/net/tun"));
    // The overlay probe leaves nothing behind.
    let left: Vec<_> = std::fs::read_dir(&runtime)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("overlay-probe"))
        .collect();
    assert!(left.is_empty());
}

#[test]
fn text_report_names_each_area() {
    // A runtime dir of its own: its overlay probe must not show in the
    // one `json_report_matches_the_host` checks the probe leaves clean.
    let mut command = harness().rocker_with_runtime(&harness().scratch("text-report-run"));
    command.args(["info", "--format", "text"]);
    let text = ok(output_within(command, Duration::from_secs(60)));
    for area in [
        "user namespaces",
        "overlay in userns",
        "slirp4netns",
        "cgroups",
        "runtime",
    ] {
        assert!(text.contains(area), "{area} missing from:\n{text}");
    }
}

#[test]
fn version_names_rocker_and_its_platform() {
    let mut command = harness().rocker();
    command.args(["version", "--format", "json"]);
    let out = ok(output_within(command, Duration::from_secs(30)));
    let version: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(version["Version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(version["Os"], "linux");
    assert!(
        version["KernelVersion"]
            .as_str()
            .is_some_and(|k| !k.is_empty()),
        "{out}"
    );
}

#[test]
fn a_reader_that_goes_away_ends_rocker_quietly() {
    for args in [&["version"][..], &["ps", "-a"][..], &["info"][..]] {
        let (read, write) = nix::unistd::pipe().unwrap();
        drop(read);
        let errors = harness().scratch("broken-pipe").join("stderr");
        // A runtime dir of its own: info's overlay probe must not show in
        // the dir json_report_matches_the_host looks at.
        let mut command = harness().rocker_with_runtime(&harness().scratch("broken-pipe-run"));
        command
            .args(args)
            .stdout(std::process::Stdio::from(write))
            .stderr(std::fs::File::create(&errors).unwrap());
        let mut child = command.spawn().unwrap();
        drop(command);
        let status = wait_within(&mut child, std::time::Duration::from_secs(60));
        let said = std::fs::read_to_string(&errors).unwrap();
        assert_eq!(status.code(), Some(141), "{args:?}: {said}");
        assert_eq!(said, "", "{args:?}: no panic, no message");
    }
}

#[test]
fn completion_scripts_load_in_their_shell_and_know_the_verbs() {
    let h = harness();
    let mut command = h.rocker();
    command.args(["completion", "bash"]);
    let script = ok(output_within(command, Duration::from_secs(30)));
    for verb in ["build", "attach", "system", "--detach-keys"] {
        assert!(
            script.contains(verb),
            "{verb} is not in the bash completion"
        );
    }
    let path = h.scratch("completion").join("rocker.bash");
    std::fs::write(&path, &script).unwrap();
    let loaded = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p rocker", path.display()))
        .output()
        .unwrap();
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    let mut command = h.rocker();
    command.args(["completion", "tcsh"]);
    assert_eq!(code(&output_within(command, Duration::from_secs(30))), 125);
}
