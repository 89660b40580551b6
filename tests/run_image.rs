//! `rocker run IMAGE`: images from a real registry, run over each rootfs
//! mode (kernel overlay, fuse-overlayfs, copy), with the image config
//! applied as docker applies it.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::oci::{self, Compression, Layer};
use common::registry::{
    push_image, registries_conf, shared_registry, write_registries_conf, TestRegistry,
};
use common::*;
use serde_json::json;

const MODES: [&str; 3] = ["overlay", "fuse-overlayfs", "copy"];

fn registry() -> &'static TestRegistry {
    shared_registry()
}

fn push(name: &str, layers: Vec<Layer>, config: serde_json::Value) -> String {
    push_image(
        registry(),
        &harness().base.join("layouts"),
        name,
        layers,
        config,
    )
}

fn gzip(tar: Vec<u8>) -> Layer {
    Layer {
        tar,
        compression: Compression::Gzip,
    }
}

fn busybox(name: &str, config: serde_json::Value) -> String {
    push(name, vec![gzip(oci::tar_of_dir(&harness().rootfs))], config)
}

/// rocker with its own data dir, so each test sees only its containers.
fn rocker(data: &Path, mode: &str, args: &[&str]) -> Output {
    let mut command = harness().rocker_in(data);
    command.env("ROCKER_ROOTFS", mode).args(args);
    output_within(command, Duration::from_secs(120))
}

fn containers(data: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(data.join("rocker/containers")) {
        Ok(entries) => entries.flatten().map(|e| e.path()).collect(),
        Err(_) => vec![],
    }
}

/// Mounts anywhere on the host that mention `data`: there must be none.
fn mounts_under(data: &Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(data.to_str().unwrap()))
        .map(str::to_string)
        .collect()
}

fn assert_nothing_left(data: &Path) {
    assert_eq!(mounts_under(data), Vec::<String>::new());
    let marker = harness().base.to_string_lossy().to_string();
    let fuse: Vec<u32> = processes_with("fuse-overlayfs")
        .into_iter()
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
        .collect();
    assert_eq!(fuse, Vec::<u32>::new(), "fuse-overlayfs left running");
}

#[test]
fn the_image_config_applies_as_docker_applies_it() {
    let image = busybox(
        "configured:1",
        json!({
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo cmd; id -u; id -g; pwd; echo $GREETING $HOME; echo $PATH"],
            "Env": ["GREETING=hello", "PATH=/bin:/custom"],
            "WorkingDir": "/srv/app",
            "User": "app"
        }),
    );
    let data = harness().scratch("config-data");
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "-q"];
        all.extend_from_slice(args);
        rocker(&data, "overlay", &all)
    };
    // Entrypoint + Cmd, Env, WorkingDir (created), User from /etc/passwd.
    assert_eq!(
        ok(run(&[&image])),
        "cmd\n1000\n1000\n/srv/app\nhello /home/app\n/bin:/custom\n"
    );
    // Arguments replace Cmd, not Entrypoint.
    assert_eq!(ok(run(&[&image, "echo replaced"])), "replaced\n");
    // --entrypoint replaces Entrypoint and drops Cmd.
    assert_eq!(
        ok(run(&["--entrypoint", "/bin/echo", &image, "a", "b"])),
        "a b\n"
    );
    assert_eq!(
        ok(run(&["--entrypoint", "", &image, "/bin/echo", "plain"])),
        "plain\n"
    );
    // The command line wins over Env, WorkingDir and User.
    assert_eq!(
        ok(run(&[
            "-e",
            "GREETING=bye",
            "-w",
            "/tmp",
            "-u",
            "0",
            &image,
            "echo $GREETING; pwd; id -u"
        ])),
        "bye\n/tmp\n0\n"
    );
    // inspect, as docker's, takes images too.
    let seen: Vec<serde_json::Value> =
        serde_json::from_str(&ok(rocker(&data, "overlay", &["inspect", &image]))).unwrap();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0]["Name"].as_str().unwrap().ends_with("configured:1"),
        "{seen:?}"
    );
    let neither = rocker(&data, "overlay", &["inspect", "no-such-thing"]);
    assert_eq!(code(&neither), 1, "docker's status for no such object");
    assert!(
        stderr(&neither).contains("no such container or image"),
        "{}",
        stderr(&neither)
    );
    // No Entrypoint or Cmd and no command: a clear error.
    let bare = busybox("bare:1", json!({}));
    let out = run(&[&bare]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("no command"), "{}", stderr(&out));
    assert_eq!(containers(&data), Vec::<PathBuf>::new());
}

#[test]
fn every_rootfs_mode_runs_images_with_whiteouts_and_ephemeral_writes() {
    let layers = vec![
        gzip(oci::tar_of_dir(&harness().rootfs)),
        gzip(oci::tar_of(&[
            ("etc/", ""),
            ("etc/doomed", "x"),
            ("var/", ""),
            ("var/cache/", ""),
            ("var/cache/old", "old"),
        ])),
        Layer {
            tar: oci::tar_of(&[
                ("etc/", ""),
                ("etc/.wh.doomed", ""),
                ("var/cache/", ""),
                ("var/cache/.wh..wh..opq", ""),
                ("var/cache/new", "new"),
            ]),
            compression: Compression::Zstd,
        },
    ];
    let image = push("layered:1", layers, json!({"Cmd": ["sh"]}));
    for mode in MODES {
        let data = harness().scratch(&format!("modes-{mode}"));
        let script = "awk '$2 == \"/\" { print \"root:\" $3 }' /proc/mounts; \
                      ls /etc/doomed 2>&1; ls /var/cache; echo written > /scratch; cat /scratch";
        let out = rocker(&data, mode, &["run", &image, "sh", "-c", script]);
        let text = ok(out);
        let root_type = match mode {
            "overlay" => "root:overlay\n",
            "fuse-overlayfs" => "root:fuse.fuse-overlayfs\n",
            _ => "root:",
        };
        assert!(text.starts_with(root_type), "{mode}: {text}");
        assert!(
            !text.contains("overlay") || mode != "copy",
            "{mode}: {text}"
        );
        assert!(text.contains("No such file"), "{mode}: {text}");
        assert!(
            text.contains("new\n") && !text.contains("old"),
            "{mode}: {text}"
        );
        assert!(text.ends_with("written\n"), "{mode}: {text}");
        // Kept without --rm: the write is in the container's own files...
        let kept = containers(&data);
        assert_eq!(kept.len(), 1, "{mode}");
        let written = match mode {
            "copy" => kept[0].join("rootfs/scratch"),
            _ => kept[0].join("upper/scratch"),
        };
        assert_eq!(std::fs::read_to_string(&written).unwrap(), "written\n");
        // ...and not in the next container from the same image.
        let out = rocker(&data, mode, &["run", "--rm", &image, "cat", "/scratch"]);
        assert_eq!(code(&out), 1, "{mode}: {}", stderr(&out));
        assert_eq!(containers(&data).len(), 1, "{mode}: --rm left files");
        assert_nothing_left(&data);
    }
}

/// What `--rm` runs moved aside for their removal (see
/// `container::removal`), in the data dir and the runtime dir.
fn removed_entries(data: &Path, runtime: &Path) -> Vec<PathBuf> {
    [data, runtime]
        .iter()
        .flat_map(|dir| {
            std::fs::read_dir(dir.join("rocker/removed"))
                .into_iter()
                .flatten()
        })
        .flatten()
        .map(|entry| entry.path())
        .collect()
}

fn wait_until_swept(data: &Path, runtime: &Path) {
    wait_until_none_left("never swept", || removed_entries(data, runtime));
}

/// Waits, at most 30 s, until `left` finds nothing; fails with `what` and
/// what is left.
fn wait_until_none_left<T: std::fmt::Debug>(what: &str, left: impl Fn() -> Vec<T>) {
    let start = std::time::Instant::now();
    loop {
        let found = left();
        if found.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what}: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The descriptors and processes that hold `namespace` (as its /proc link
/// reads, `mnt:[INODE]`): every process's open files and namespaces.
fn holders_of(namespace: &str) -> Vec<PathBuf> {
    let links = |dir: PathBuf| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    links(PathBuf::from("/proc"))
        .into_iter()
        .filter(|process| {
            process
                .file_name()
                .is_some_and(|n| n.to_string_lossy().parse::<u32>().is_ok())
        })
        .flat_map(|process| {
            let mut held = links(process.join("fd"));
            held.push(process.join("ns/mnt"));
            held
        })
        .filter(|link| std::fs::read_link(link).is_ok_and(|target| target.as_os_str() == namespace))
        .collect()
}

/// A sweep cut short: a container's dir half deleted, with a dir no one
/// may enter (overlay's work dir has one).
fn leave_half_removed(data: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    // Under the sweepers' lock: a sweep still going (it takes whatever
    // turns up while it runs) would otherwise delete the entry while it is
    // made, where the tests run as rocker's own user, as in the VM.
    let lock = std::fs::File::open(data.join("rocker/removed.lock"))
        .expect("the runs before made the sweep lock");
    let _sweeping = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, err)| err)
        .expect("taking the sweep lock");
    let dir = data.join("rocker/removed").join("ab".repeat(32));
    std::fs::create_dir_all(dir.join("upper/var/lib")).unwrap();
    std::fs::write(dir.join("upper/var/lib/state"), "x").unwrap();
    std::fs::create_dir_all(dir.join("work/work")).unwrap();
    harness().give_tree(&dir);
    std::fs::set_permissions(
        dir.join("work/work"),
        std::fs::Permissions::from_mode(0o000),
    )
    .unwrap();
    dir
}

/// `--rm` hands back the exit status before its container's files are
/// deleted: they leave the store at once (the name is free for the next
/// run at once), a detached sweep deletes them, holding no pipe of the
/// caller's open (else this test's output capture would wait on it), and
/// what a sweep cut short left goes with the next `--rm` run or with
/// `container prune`.
#[test]
fn a_rm_run_leaves_the_store_at_once_and_its_files_soon_after() {
    let image = busybox("rm-sweep:1", json!({}));
    for mode in MODES {
        let data = harness().scratch(&format!("rm-sweep-data-{mode}"));
        let runtime = harness().scratch(&format!("rm-sweep-run-{mode}"));
        let run = |args: &[&str]| {
            let mut command = harness().rocker_with_runtime(&runtime);
            command
                .env("XDG_DATA_HOME", &data)
                .env("ROCKER_ROOTFS", mode)
                .args(args);
            output_within(command, Duration::from_secs(120))
        };
        let script = "readlink /proc/self/ns/mnt; mkdir -p /var/lib/app && seq 1 300 | while read n; do echo $n > /var/lib/app/$n; done; exit 7";
        let mut namespaces = vec![];
        for _ in 0..2 {
            let out = run(&[
                "run",
                "--rm",
                "--name",
                "once",
                "--network",
                "none",
                &image,
                "sh",
                "-c",
                script,
            ]);
            assert_eq!(code(&out), 7, "{mode}: {}", stderr(&out));
            namespaces.push(String::from_utf8_lossy(&out.stdout).trim().to_string());
            assert_eq!(containers(&data), Vec::<PathBuf>::new(), "{mode}");
            assert!(ok(run(&["ps", "-aq"])).is_empty(), "{mode}");
        }
        wait_until_swept(&data, &runtime);
        // The sweep held each container's mount namespace, so that its
        // teardown came after rocker's exit, and lets go of it once rocker
        // has gone. (Another run's sweep may have deleted the dirs first,
        // so the dirs being gone does not mean this one has woken yet.)
        for namespace in &namespaces {
            assert!(namespace.starts_with("mnt:["), "{mode}: {namespace}");
            let what = format!("{mode}: {namespace} still held by");
            wait_until_none_left(&what, || holders_of(namespace));
        }
        // A sweep cut short: the next --rm run finishes it...
        let half = leave_half_removed(&data);
        ok(run(&["run", "--rm", "--network", "none", &image, "true"]));
        wait_until_swept(&data, &runtime);
        assert!(!half.exists(), "{mode}");
        // ...and so does container prune, before it returns.
        let half = leave_half_removed(&data);
        ok(run(&["container", "prune"]));
        assert!(!half.exists(), "{mode}");
        assert_nothing_left(&data);
    }
}

/// A `--rm` container's kernel overlay is volatile: no sync of the whole
/// upper file system when it goes away at the exit, and no fsync from
/// inside; one that is kept (and may start again, which a volatile upper
/// dir would refuse) is not.
#[test]
fn only_a_rm_containers_overlay_skips_syncs() {
    let image = busybox("volatile:1", json!({}));
    let data = harness().scratch("volatile-data");
    // The root's mount options, as a container run with `flags` sees them.
    let root_options = |flags: &[&str]| {
        let mut args = vec!["run", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend([image.as_str(), "sh", "-c"]);
        args.push("awk '$2 == \"/\" { print $4 }' /proc/mounts");
        ok(rocker(&data, "overlay", &args))
    };
    let removed = root_options(&["--rm"]);
    assert!(removed.contains("volatile"), "{removed}");
    let kept = root_options(&["--name", "kept"]);
    assert!(!kept.contains("volatile"), "{kept}");
    // Started again on the same upper dir.
    let again = ok(rocker(&data, "overlay", &["start", "-a", "kept"]));
    assert!(!again.contains("volatile"), "{again}");
    ok(rocker(&data, "overlay", &["rm", "kept"]));

    // A --rm container whose start failed before its command ran stays,
    // and mounts its volatile upper dir again at the next start.
    let id = ok(rocker(
        &data,
        "overlay",
        &[
            "create",
            "--rm",
            "--network",
            "none",
            &image,
            "/no/such/command",
        ],
    ));
    for _ in 0..2 {
        let out = rocker(&data, "overlay", &["start", "-a", id.trim()]);
        assert_eq!(code(&out), 127, "{}", stderr(&out));
        // And `cp` mounts it (not volatile) in between.
        let dest = format!("{}:/etc/copied", id.trim());
        ok(rocker(&data, "overlay", &["cp", "/etc/hostname", &dest]));
    }
    ok(rocker(&data, "overlay", &["rm", id.trim()]));
}

#[test]
fn a_long_layer_chain_mounts() {
    let mut layers = vec![gzip(oci::tar_of_dir(&harness().rootfs))];
    for n in 1..128 {
        let name = format!("layers/{n}");
        layers.push(Layer {
            tar: oci::tar_of(&[("layers/", ""), (&name, "x")]),
            compression: Compression::None,
        });
    }
    let image = push("chain:128", layers, json!({}));
    for mode in MODES {
        let data = harness().scratch(&format!("chain-{mode}"));
        let out = rocker(
            &data,
            mode,
            &[
                "run",
                "--rm",
                "-q",
                &image,
                "sh",
                "-c",
                "ls /layers | wc -l",
            ],
        );
        assert_eq!(ok(out).trim(), "127", "{mode}");
        assert_nothing_left(&data);
    }
}

#[test]
fn pull_policies_and_no_registry_traffic_when_present() {
    let h = harness();
    // A registry of this test's own, stopped half way.
    let own = TestRegistry::start(&h.base.join("policy-registry"), None);
    let image = push_image(
        &own,
        &h.base.join("layouts"),
        "policy:1",
        vec![gzip(oci::tar_of_dir(&h.rootfs))],
        json!({"Cmd": ["echo", "ran"]}),
    );
    let config = h.scratch("policy-config");
    write_registries_conf(&config, &registries_conf(&[&own]));
    let data = h.scratch("policy-data");
    let run = |args: &[&str]| {
        let mut command = h.rocker_in(&data);
        command
            .env("XDG_CONFIG_HOME", &config)
            .args(["run", "--rm"])
            .args(args);
        output_within(command, Duration::from_secs(120))
    };
    let out = run(&["--pull", "never", &image]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--pull never"), "{}", stderr(&out));
    assert_eq!(ok(run(&[&image])), "ran\n");
    drop(own);
    // The registry is gone: a present image still runs, without a pull.
    assert_eq!(ok(run(&[&image])), "ran\n");
    assert_eq!(ok(run(&["--pull", "never", &image])), "ran\n");
    let out = run(&["--pull", "always", &image]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert_eq!(containers(&data), Vec::<PathBuf>::new());
}

#[test]
fn failures_leave_nothing_behind() {
    let image = busybox("failing:1", json!({}));
    for mode in MODES {
        let data = harness().scratch(&format!("failing-{mode}"));
        let out = rocker(&data, mode, &["run", &image, "/no/such/program"]);
        assert_eq!(code(&out), 127, "{mode}: {}", stderr(&out));
        let out = rocker(&data, mode, &["run", "-w", "/etc/passwd", &image, "true"]);
        assert_eq!(code(&out), 125, "{mode}: {}", stderr(&out));
        assert_eq!(containers(&data), Vec::<PathBuf>::new(), "{mode}");
        // A container killed by a signal ran: its files stay until rm.
        let out = rocker(
            &data,
            mode,
            &["run", "--rm", "--init", &image, "sh", "-c", "kill -9 $$"],
        );
        assert_eq!(code(&out), 137, "{mode}");
        assert_eq!(containers(&data), Vec::<PathBuf>::new(), "{mode}");
        assert_nothing_left(&data);
    }
}

#[test]
fn a_missing_fuse_overlayfs_is_named_and_leaves_nothing() {
    let image = busybox("fuse:1", json!({}));
    let data = harness().scratch("fuse-data");
    let mut command = harness().rocker_in(&data);
    command
        .env("ROCKER_ROOTFS", "fuse-overlayfs")
        .env("PATH", "/nonexistent")
        // (No slirp4netns to find either: with a network, rocker would
        // name whichever it starts first.)
        .args(["run", "--rm", "--network", "none", &image, "true"]);
    let out = output_within(command, Duration::from_secs(120));
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("apt-get install fuse-overlayfs"),
        "{}",
        stderr(&out)
    );
    assert_eq!(containers(&data), Vec::<PathBuf>::new());
    assert_nothing_left(&data);
}

#[test]
fn rocker_info_reports_the_rootfs_mode() {
    let data = harness().scratch("info-data");
    let out = ok(rocker(&data, "copy", &["info", "--format", "json"]));
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["rootfs"]["mode"], "copy");
    assert!(report["rootfs"]["reason"]
        .as_str()
        .unwrap()
        .contains("ROCKER_ROOTFS"));
}

#[test]
fn a_kept_container_keeps_its_layers_through_rmi_and_prune() {
    let image = busybox("pinned:1", json!({}));
    let data = harness().scratch("pin-data");
    ok(rocker(&data, "overlay", &["run", "-q", &image, "true"]));
    let layers = data.join("rocker/layers");
    let count = || std::fs::read_dir(&layers).unwrap().count();
    assert_eq!(count(), 1);
    ok(rocker(&data, "overlay", &["rmi", &image]));
    ok(rocker(&data, "overlay", &["image", "prune"]));
    assert_eq!(count(), 1, "a layer of a kept container was removed");
    // Once the container goes, nothing holds the layer.
    ok(rocker(&data, "overlay", &["container", "prune"]));
    assert_eq!(containers(&data), Vec::<PathBuf>::new());
    ok(rocker(&data, "overlay", &["image", "prune"]));
    assert_eq!(count(), 0);
}

#[test]
fn exec_works_in_every_rootfs_mode_with_the_image_config() {
    let image = busybox(
        "served:1",
        json!({
            "Env": ["GREETING=hello"],
            "WorkingDir": "/srv/app",
            "User": "app"
        }),
    );
    for mode in MODES {
        let data = harness().scratch(&format!("exec-{mode}"));
        let id = ok(rocker(
            &data,
            mode,
            &[
                "run",
                "-d",
                "-q",
                "--network",
                "none",
                &image,
                "sh",
                "-c",
                "echo from-init > mark; exec sleep 300",
            ],
        ));
        let id = id.trim();
        let script = "while [ ! -e mark ]; do sleep 0.05; done; cat mark; pwd; id -u; \
                      echo $GREETING; awk '$2 == \"/\" { print $3 }' /proc/mounts";
        let out = ok(rocker(&data, mode, &["exec", id, "sh", "-c", script]));
        let root_type = match mode {
            "overlay" => "overlay",
            "fuse-overlayfs" => "fuse.fuse-overlayfs",
            _ => "",
        };
        assert!(
            out.starts_with("from-init\n/srv/app\n1000\nhello\n") && out.contains(root_type),
            "{mode}: {out}"
        );
        // The image's user is the one mapped: by name, and root is not.
        assert_eq!(
            ok(rocker(&data, mode, &["exec", "-u", "app", id, "id", "-un"])),
            "app\n"
        );
        let root = rocker(&data, mode, &["exec", "-u", "root", id, "true"]);
        assert_eq!(code(&root), 125, "{mode}");
        assert!(
            stderr(&root).contains("maps only uid 1000"),
            "{}",
            stderr(&root)
        );
        ok(rocker(&data, mode, &["rm", "-f", id]));
        assert_eq!(containers(&data), Vec::<PathBuf>::new());
        assert_nothing_left(&data);
    }
}

/// An image cannot disable `stop` with a StopSignal no one can send: the
/// run warns and records SIGTERM, and `stop` ends the container (with
/// SIGKILL after the timeout when the command ignores SIGTERM).
#[test]
fn a_bogus_stop_signal_falls_back_to_sigterm_and_stop_still_stops() {
    let image = busybox("bogus-stop:1", json!({"StopSignal": "SIGBOGUS"}));
    let data = harness().scratch("bogus-stop-data");
    let started = rocker(
        &data,
        "overlay",
        &[
            "run",
            "-d",
            "--name",
            "stubborn",
            "--network",
            "none",
            &image,
            "sh",
            "-c",
            "trap '' TERM; while true; do sleep 1; done",
        ],
    );
    assert!(
        stderr(&started).contains("StopSignal") && stderr(&started).contains("SIGTERM"),
        "{}",
        stderr(&started)
    );
    ok(started);
    let inspect = |name: &str| -> serde_json::Value {
        let text = ok(rocker(&data, "overlay", &["inspect", name]));
        serde_json::from_str::<serde_json::Value>(&text).unwrap()[0].clone()
    };
    assert_eq!(inspect("stubborn")["Config"]["StopSignal"], "SIGTERM");
    ok(rocker(&data, "overlay", &["stop", "-t", "1", "stubborn"]));
    assert_eq!(inspect("stubborn")["State"]["Status"], "exited");
    assert_eq!(inspect("stubborn")["State"]["ExitCode"], 137);
    ok(rocker(&data, "overlay", &["rm", "stubborn"]));
}

/// `diff` lists a container's changes to its image from its upper dir:
/// A for new paths, C for changed ones (and the directories above them),
/// D for deleted ones; running or stopped, in both overlay modes.
#[test]
fn diff_shows_added_changed_and_deleted_paths() {
    let image = busybox("diff:1", json!({}));
    for mode in ["overlay", "fuse-overlayfs"] {
        let data = harness().scratch(&format!("diff-{mode}"));
        ok(rocker(
            &data,
            mode,
            &[
                "run",
                "--name",
                "changer",
                "--network",
                "none",
                &image,
                "sh",
                "-c",
                "echo x > /new && echo y >> /etc/passwd && rm /etc/group && mkdir /d && touch /d/f",
            ],
        ));
        let out = ok(rocker(&data, mode, &["diff", "changer"]));
        let lines: Vec<&str> = out.lines().collect();
        for want in [
            "A /d",
            "A /d/f",
            "C /etc",
            "C /etc/passwd",
            "D /etc/group",
            "A /new",
        ] {
            assert!(lines.contains(&want), "{mode}: {want} missing from {out}");
        }
        assert!(!out.contains("/bin"), "{mode}: {out}");
        ok(rocker(&data, mode, &["rm", "changer"]));
    }
    let data = harness().scratch("diff-copy");
    ok(rocker(
        &data,
        "copy",
        &[
            "run",
            "--name",
            "copied",
            "--network",
            "none",
            &image,
            "true",
        ],
    ));
    let out = rocker(&data, "copy", &["diff", "copied"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("no overlay upper dir"),
        "{}",
        stderr(&out)
    );
}

/// Labels: the image's, with `--label` (`-l`) over them, in inspect.
#[test]
fn labels_merge_the_images_with_the_command_lines() {
    let image = busybox("labelled:1", json!({"Labels": {"a": "1", "b": "2"}}));
    let data = harness().scratch("labels-data");
    ok(rocker(
        &data,
        "overlay",
        &[
            "run",
            "--name",
            "l",
            "--network",
            "none",
            "-l",
            "b=3",
            "--label",
            "c",
            &image,
            "true",
        ],
    ));
    let text = ok(rocker(&data, "overlay", &["inspect", "l"]));
    let report: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        report[0]["Config"]["Labels"],
        json!({"a": "1", "b": "3", "c": ""})
    );
    let bad = rocker(&data, "overlay", &["run", "-l", "=x", &image, "true"]);
    assert_eq!(code(&bad), 125);
}

#[test]
fn a_stopped_container_starts_again_with_what_it_wrote() {
    let image = busybox("restartable:1", json!({"Cmd": ["sh"]}));
    for mode in MODES {
        let data = harness().scratch(&format!("restart-{mode}"));
        let run = |args: &[&str]| rocker(&data, mode, args);
        // Each start adds a line to a file in the container's own root.
        let script = "echo run >> /runs; wc -l < /runs; exit 7";
        let id = ok(run(&[
            "create",
            "--name",
            "again",
            "--network",
            "none",
            &image,
            "sh",
            "-c",
            script,
        ]));
        assert_eq!(id.trim().len(), 64, "{mode}: {id}");
        let listed = ok(run(&["ps", "-a"]));
        assert!(listed.contains("Created"), "{mode}: {listed}");

        let first = run(&["start", "-a", "again"]);
        assert_eq!(code(&first), 7, "{mode}: {}", stderr(&first));
        assert_eq!(stdout(&first).trim(), "1", "{mode}");
        let second = run(&["start", "-a", "again"]);
        assert_eq!(
            stdout(&second).trim(),
            "2",
            "{mode}: the same container again"
        );

        // In the background: start prints the name; the log has the line.
        assert_eq!(ok(run(&["start", "again"])), "again\n", "{mode}");
        assert_eq!(ok(run(&["wait", "again"])).trim(), "7", "{mode}");
        let log = ok(run(&["logs", "again"]));
        assert_eq!(log.trim(), "3", "{mode}: {log}");

        // A container made by run (without --rm) starts again too.
        let ran = run(&[
            "run",
            "--name",
            "ran",
            "--network",
            "none",
            &image,
            "sh",
            "-c",
            script,
        ]);
        assert_eq!(code(&ran), 7, "{mode}: {}", stderr(&ran));
        let again = run(&["start", "-a", "ran"]);
        assert_eq!(stdout(&again).trim(), "2", "{mode}");

        ok(run(&["rm", "again", "ran"]));
        assert!(containers(&data).is_empty(), "{mode}");
        assert_nothing_left(&data);
    }
}

#[test]
fn cp_both_ways_running_and_stopped_and_never_through_a_container_symlink() {
    let image = busybox("copied-around:1", json!({"Cmd": ["sh"]}));
    let h = harness();
    for mode in MODES {
        let data = h.scratch(&format!("cp-{mode}"));
        let host = h.scratch(&format!("cp-host-{mode}"));
        let run = |args: &[&str]| rocker(&data, mode, args);
        // A host file the container will try to have overwritten.
        let victim = host.join("victim");
        std::fs::write(&victim, "host's own\n").unwrap();
        std::fs::create_dir_all(host.join("site/sub")).unwrap();
        std::fs::write(host.join("site/index.html"), "<h1>hi</h1>\n").unwrap();
        std::fs::write(host.join("site/sub/page"), "page\n").unwrap();
        std::fs::write(host.join("note"), "a note\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(host.join("note"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        h.give_tree(&host);

        ok(run(&[
            "run",
            "-d",
            "--name",
            "box",
            "--network",
            "none",
            &image,
            "sh",
            "-c",
            &format!(
                "ln -s {} /tmp/evil; ln -s {} /tmp/evildir; sleep 300",
                victim.display(),
                host.display()
            ),
        ]));
        let exec = |script: &str| ok(run(&["exec", "box", "sh", "-c", script]));
        let start = std::time::Instant::now();
        while exec("test -L /tmp/evil && echo yes").trim() != "yes" {
            assert!(start.elapsed() < Duration::from_secs(10));
        }
        let h_path = |name: &str| host.join(name).to_string_lossy().to_string();

        // Into a running container: a file into a dir, a dir that is
        // created, a dir's contents into an existing one.
        ok(run(&["cp", &h_path("note"), "box:/tmp/"]));
        ok(run(&["cp", &h_path("site"), "box:/srv"]));
        ok(run(&["cp", &format!("{}/.", h_path("site")), "box:/tmp"]));
        assert_eq!(
            exec("cat /tmp/note; stat -c %a /tmp/note"),
            "a note\n750\n",
            "{mode}"
        );
        assert_eq!(
            exec("cat /srv/index.html /srv/sub/page"),
            "<h1>hi</h1>\npage\n"
        );
        assert_eq!(
            exec("cat /tmp/index.html /tmp/sub/page"),
            "<h1>hi</h1>\npage\n"
        );
        // Through the container's symlinks: nothing reaches the host.
        ok(run(&["cp", &h_path("note"), "box:/tmp/evil"]));
        let through_dir = run(&["cp", &h_path("note"), "box:/tmp/evildir/planted"]);
        assert_ne!(code(&through_dir), 0, "{mode}: {}", stderr(&through_dir));
        assert_eq!(
            std::fs::read_to_string(&victim).unwrap(),
            "host's own\n",
            "{mode}"
        );
        assert!(!host.join("planted").exists(), "{mode}");
        assert_eq!(
            exec("cat /tmp/evil"),
            "a note\n",
            "{mode}: the link was replaced"
        );

        // Out of a stopped container: a file, a dir, a tar on stdout.
        ok(run(&["stop", "-t", "1", "box"]));
        let out = h.scratch(&format!("cp-out-{mode}"));
        let out_path = |name: &str| out.join(name).to_string_lossy().to_string();
        ok(run(&["cp", "box:/srv/index.html", &out_path("copy.html")]));
        ok(run(&["cp", "box:/srv", &out_path("")]));
        assert_eq!(
            std::fs::read_to_string(out.join("copy.html")).unwrap(),
            "<h1>hi</h1>\n"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("srv/sub/page")).unwrap(),
            "page\n"
        );
        let mut command = h.rocker_in(&data);
        command
            .env("ROCKER_ROOTFS", mode)
            .args(["cp", "box:/srv", "-"]);
        let tar = output_within(command, Duration::from_secs(60));
        assert!(tar.status.success(), "{mode}: {}", stderr(&tar));
        let mut archive = tar::Archive::new(&tar.stdout[..]);
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
            .collect();
        assert!(
            names.iter().any(|n| n == "srv/sub/page"),
            "{mode}: {names:?}"
        );

        // Into a stopped one: there when it starts again.
        ok(run(&["cp", &h_path("note"), "box:/root/from-host"]));
        ok(run(&["start", "box"]));
        let start = std::time::Instant::now();
        while code(&run(&["exec", "box", "true"])) != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{mode}: box did not start"
            );
        }
        assert_eq!(exec("cat /root/from-host"), "a note\n", "{mode}");
        let missing = run(&["cp", "box:/no/such", &out_path("x")]);
        assert_eq!(code(&missing), 1, "{mode}: {}", stderr(&missing));
        ok(run(&["rm", "-f", "box"]));
        assert_nothing_left(&data);
    }
}

#[test]
fn a_container_with_a_tree_deeper_than_the_fd_limit_is_removed_whole() {
    let image = busybox("deep-writer:1", json!({"Cmd": ["sh"]}));
    let data = harness().scratch("deep-tree");
    let made = rocker(
        &data,
        "overlay",
        &[
            "run",
            "--name",
            "deep",
            "--network",
            "none",
            &image,
            "sh",
            "-c",
            "i=0; while [ $i -lt 1500 ]; do mkdir d && cd d || exit 1; i=$((i+1)); done; touch end",
        ],
    );
    assert_eq!(code(&made), 0, "{}", stderr(&made));
    // rm with 256 descriptors: one per level would not do.
    let mut command = harness().command_as_user("/bin/sh");
    command
        .env("XDG_DATA_HOME", &data)
        .env("ROCKER_ROOTFS", "overlay")
        .arg("-c")
        .arg(format!(
            "ulimit -n 256 && exec {} rm deep",
            harness().binary.display()
        ));
    let removed = output_within(command, Duration::from_secs(120));
    assert_eq!(code(&removed), 0, "{}", stderr(&removed));
    assert!(containers(&data).is_empty(), "the container's dir is gone");
    assert!(ok(rocker(&data, "overlay", &["ps", "-aq"])).is_empty());
}

#[test]
fn a_run_killed_before_its_record_leaves_nothing_that_pins_layers() {
    let h = harness();
    let image = busybox("killed-early:1", json!({"Cmd": ["sh"]}));
    let data = h.scratch("killed-early");
    ok(rocker(&data, "overlay", &["pull", "-q", &image]));
    // The run blocks reading its --env-file (a FIFO no one writes), after
    // making the container's dir, before recording the container.
    let fifo = h.scratch("killed-early-fifo").join("env");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o666)).unwrap();
    h.give(&fifo);
    let mut command = h.rocker_in(&data);
    command.env("ROCKER_ROOTFS", "overlay").args([
        "run",
        "--env-file",
        fifo.to_str().unwrap(),
        "--network",
        "none",
        &image,
        "true",
    ]);
    let mut run = spawn_quiet(command);
    let start = std::time::Instant::now();
    while containers(&data).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no container dir"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let _ = run.kill();
    let _ = run.wait();
    let orphan = containers(&data).remove(0);
    assert!(
        !orphan.join("config.json").exists(),
        "it was killed before its record"
    );
    // Young, it may be a run in progress: left alone.
    ok(rocker(&data, "overlay", &["container", "prune"]));
    assert!(orphan.exists());
    let status = std::process::Command::new("touch")
        .args(["-h", "-d", "2 minutes ago"])
        .arg(&orphan)
        .status()
        .unwrap();
    assert!(status.success());
    ok(rocker(&data, "overlay", &["rmi", &image]));
    assert!(!orphan.exists(), "the killed run's dir is swept");
    let layers: Vec<_> = std::fs::read_dir(data.join("rocker/layers"))
        .unwrap()
        .collect();
    assert!(
        layers.is_empty(),
        "nothing pins the image's layers any more"
    );
}

/// `ps -s`: what each container wrote, and that with its image.
#[test]
fn ps_size_counts_the_containers_writes_in_each_mode() {
    let image = busybox("busybox:ps-size", serde_json::json!({"Cmd": ["sh"]}));
    for mode in MODES {
        let data = harness().scratch(&format!("ps-size-{mode}"));
        ok(rocker(
            &data,
            mode,
            &[
                "run",
                "--name",
                "writer",
                "--network",
                "none",
                &image,
                "sh",
                "-c",
                "head -c 300000 /dev/zero > /big",
            ],
        ));
        let out = ok(rocker(
            &data,
            mode,
            &["ps", "-a", "-s", "--format", "{{.Names}} {{.Size}}"],
        ));
        let (written, virtual_size) = out
            .trim()
            .strip_prefix("writer ")
            .and_then(|rest| rest.split_once(" (virtual "))
            .unwrap_or_else(|| panic!("{mode}: {out}"));
        let kb = |text: &str| -> f64 {
            let text = text.trim_end_matches(')');
            match text.strip_suffix("MB") {
                Some(mb) => mb.parse::<f64>().unwrap() * 1000.0,
                None => text
                    .strip_suffix("kB")
                    .unwrap_or_else(|| panic!("{text}"))
                    .parse()
                    .unwrap(),
            }
        };
        assert!(kb(written) >= 300.0, "{mode}: {out}");
        assert!(kb(virtual_size) > kb(written), "{mode}: {out}");
        let table = ok(rocker(&data, mode, &["ps", "-a", "--size"]));
        assert!(table.lines().next().unwrap().ends_with("SIZE"), "{table}");
    }
}
