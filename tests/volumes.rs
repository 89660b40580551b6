//! Volumes as the unprivileged user: named ones that outlive containers
//! and are filled from the image on first use, anonymous ones for `-v
//! /path` and the image's VOLUMEs (gone with `--rm` and `rm -v`),
//! `--mount` of each type, and the `volume` verbs with docker's exits.

mod common;

use std::path::PathBuf;
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use common::oci::{tar_of, Compression, Layer};
use common::registry::{push_image, shared_registry, TestRegistry};
use common::*;
use serde_json::{json, Value};

fn registry() -> &'static TestRegistry {
    shared_registry()
}

/// busybox with `/srv/seed/hello` and a VOLUME on `/srv/seed`.
fn image() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        push_image(
            registry(),
            &harness().base.join("layouts"),
            "busybox:volumes",
            vec![
                Layer {
                    tar: common::oci::tar_of_dir(&harness().rootfs),
                    compression: Compression::Gzip,
                },
                Layer {
                    tar: tar_of(&[
                        ("srv/", ""),
                        ("srv/seed/", ""),
                        ("srv/seed/hello", "from the image\n"),
                    ]),
                    compression: Compression::Gzip,
                },
            ],
            json!({"Cmd": ["sh"], "Env": ["PATH=/bin"], "Volumes": {"/srv/seed": {}}}),
        )
    })
}

/// A store of its own.
struct Store {
    data: PathBuf,
}

impl Store {
    fn new(name: &str) -> Store {
        Store {
            data: harness().scratch(&format!("{name}-data")),
        }
    }

    fn rocker(&self, args: &[&str]) -> Output {
        let mut command = harness().rocker_in(&self.data);
        command.args(args);
        output_within(command, Duration::from_secs(120))
    }

    fn ok(&self, args: &[&str]) -> String {
        ok(self.rocker(args))
    }

    /// `run --rm --network none IMAGE sh -c SCRIPT` with `flags` first.
    fn sh(&self, flags: &[&str], script: &str) -> String {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend([image(), "sh", "-c", script]);
        self.ok(&args)
    }

    fn volumes(&self) -> Vec<String> {
        self.ok(&["volume", "ls", "-q"])
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn a_named_volume_outlives_its_containers_and_is_seeded_from_the_image() {
    let store = Store::new("named");
    // First use: made, and filled with what the image has there.
    let out = store.sh(
        &["-v", "seeded:/srv/seed"],
        "cat /srv/seed/hello; echo written > /srv/seed/mine",
    );
    assert_eq!(out, "from the image\n");
    // A second container sees both; the image's content is not copied
    // again over what the volume holds (removed here).
    let out = store.sh(
        &["-v", "seeded:/srv/seed"],
        "cat /srv/seed/mine; rm /srv/seed/hello",
    );
    assert_eq!(out, "written\n");
    let out = store.sh(
        &["--mount", "source=seeded,target=/srv/seed"],
        "ls /srv/seed",
    );
    assert_eq!(out, "mine\n");
    // Read-only, and elsewhere.
    let ro = store.rocker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "seeded:/data:ro,z",
        image(),
        "sh",
        "-c",
        "cat /data/mine && touch /data/x",
    ]);
    assert_eq!(code(&ro), 1, "{}", stderr(&ro));
    assert!(stderr(&ro).contains("Read-only"), "{}", stderr(&ro));
    // nocopy: a new volume stays empty.
    let out = store.sh(&["-v", "empty:/srv/seed:nocopy"], "ls -A /srv/seed | wc -l");
    assert_eq!(out.trim(), "0");
    let mut listed = store.volumes();
    listed.sort();
    assert_eq!(listed, ["empty", "seeded"], "named volumes stay after --rm");

    let report: Value = serde_json::from_str(&store.ok(&["volume", "inspect", "seeded"])).unwrap();
    let report = &report[0];
    for key in [
        "CreatedAt",
        "Driver",
        "Labels",
        "Mountpoint",
        "Name",
        "Options",
        "Scope",
    ] {
        assert!(report.get(key).is_some(), "no {key} in {report}");
    }
    assert_eq!(report["Driver"], "local");
    let mountpoint = report["Mountpoint"].as_str().unwrap();
    assert!(mountpoint.starts_with(&store.data.to_string_lossy().to_string()));
    assert!(PathBuf::from(mountpoint).join("mine").is_file());
    let out = store.ok(&["volume", "inspect", "-f", "{{.Name}} {{.Scope}}", "seeded"]);
    assert_eq!(out, "seeded local\n");
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_with_rm_flag() {
    let store = Store::new("anonymous");
    // The image's VOLUME gets one of its own, seeded; --rm removes it.
    let out = store.sh(
        &[],
        "cat /srv/seed/hello; grep -c ' /srv/seed ' /proc/mounts",
    );
    assert_eq!(out, "from the image\n1\n");
    assert!(store.volumes().is_empty(), "{:?}", store.volumes());
    // --image-volume ignore: the path is part of the container's root.
    let out = store.sh(
        &["--image-volume", "ignore"],
        "grep -c ' /srv/seed ' /proc/mounts || true",
    );
    assert_eq!(out.trim(), "0");

    // Kept by a kept container, and by plain rm; rm -v removes them.
    store.ok(&[
        "run",
        "--name",
        "keeper",
        "--network",
        "none",
        "-v",
        "/cache",
        image(),
        "true",
    ]);
    assert_eq!(store.volumes().len(), 2, "/cache and the image's /srv/seed");
    let report: Value = serde_json::from_str(&store.ok(&["inspect", "keeper"])).unwrap();
    let mounts = report[0]["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    // docker lists no anonymous volume among the Binds.
    assert!(report[0]["HostConfig"]["Binds"].is_null(), "{report}");
    for mount in mounts {
        assert_eq!(mount["Type"], "volume");
        assert_eq!(mount["Driver"], "local");
        assert_eq!(mount["Name"].as_str().unwrap().len(), 64);
        assert!(mount["Source"].as_str().unwrap().ends_with("/_data"));
    }
    let in_use = store.rocker(&["volume", "rm", mounts[0]["Name"].as_str().unwrap()]);
    assert_eq!(code(&in_use), 1, "{}", stderr(&in_use));
    assert!(
        stderr(&in_use).contains("in use by container"),
        "{}",
        stderr(&in_use)
    );
    // Not anonymous, so not pruned by default; unused and prunable with -a.
    store.ok(&["volume", "create", "--label", "team=web", "keep-me"]);
    store.ok(&["rm", "-v", "keeper"]);
    assert_eq!(store.volumes(), ["keep-me"]);

    store.ok(&[
        "run",
        "--name",
        "left",
        "--network",
        "none",
        image(),
        "true",
    ]);
    store.ok(&["rm", "left"]);
    assert_eq!(
        store.volumes().len(),
        2,
        "plain rm leaves the anonymous volume"
    );
    let dangling = store.ok(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        "dangling=true",
        "--filter",
        "label=com.docker.volume.anonymous",
    ]);
    assert_eq!(dangling.lines().count(), 1, "{dangling}");
    let pruned = store.ok(&["volume", "prune", "-f"]);
    assert!(pruned.contains("Deleted Volumes:"), "{pruned}");
    assert_eq!(store.volumes(), ["keep-me"]);
    let out = store.ok(&[
        "volume",
        "ls",
        "--filter",
        "label=team=web",
        "--format",
        "{{.Name}}\t{{.Driver}}\t{{.Labels}}",
    ]);
    assert_eq!(out, "keep-me\tlocal\tteam=web\n");
    store.ok(&["volume", "prune", "-a", "-f"]);
    assert!(store.volumes().is_empty());
}

#[test]
fn mount_flags_of_each_type() {
    let store = Store::new("mount");
    let host = harness().scratch("mount-host");
    std::fs::write(host.join("from-host"), "host file\n").unwrap();
    harness().give_tree(&host);
    let bind = format!("type=bind,source={},target=/host,readonly", host.display());
    let out = store.sh(
        &[
            "--mount",
            &bind,
            "--mount",
            "type=volume,target=/vol,volume-label=made=by-mount",
            "--mount",
            "type=tmpfs,destination=/scratch,tmpfs-size=2m",
            "-v",
            &format!("{}:/z:Z", host.display()),
        ],
        "cat /host/from-host; touch /host/x 2>/dev/null || echo ro; touch /vol/ok && echo vol; \
         df -k /scratch | tail -1 | awk '{print $2}'; cat /z/from-host",
    );
    assert_eq!(out, "host file\nro\nvol\n2048\nhost file\n");
    let errors = [
        (vec!["--mount", "type=bind,target=/x"], "needs source"),
        (vec!["--mount", "type=nfs,target=/x"], "unknown type"),
        (vec!["-v", "a b:/x"], "volume name"),
        (
            vec!["-v", "one:/x", "-v", "two:/x"],
            "duplicate mount point",
        ),
    ];
    for (flags, message) in errors {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend(flags.iter().copied());
        args.extend([image(), "true"]);
        let out = store.rocker(&args);
        assert_eq!(code(&out), 125, "{flags:?}");
        assert!(
            stderr(&out).contains(message),
            "{flags:?}: {}",
            stderr(&out)
        );
    }
    // The anonymous volume went with --rm; the failed runs made none.
    assert!(store.volumes().is_empty(), "{:?}", store.volumes());
}

#[test]
fn volume_verbs_exit_as_docker_and_df_counts_volumes() {
    let store = Store::new("verbs");
    let missing = store.rocker(&["volume", "inspect", "nosuch"]);
    assert_eq!(code(&missing), 1);
    assert!(
        stderr(&missing).contains("no such volume"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(code(&store.rocker(&["volume", "rm", "nosuch"])), 1);
    assert_eq!(code(&store.rocker(&["volume", "rm", "-f", "nosuch"])), 0);
    assert_eq!(
        code(&store.rocker(&["volume", "create", "x"])),
        125,
        "too short a name"
    );
    assert_eq!(store.ok(&["volume", "create", "twice"]), "twice\n");
    assert_eq!(store.ok(&["volume", "create", "twice"]), "twice\n");
    let random = store.ok(&["volume", "create"]);
    assert_eq!(random.trim().len(), 64);
    // Named at random, it is still a named volume: one of the Binds.
    let bind = format!("{}:/r", random.trim());
    store.ok(&[
        "run",
        "--name",
        "user",
        "--network",
        "none",
        "-v",
        &bind,
        image(),
        "true",
    ]);
    let report: Value = serde_json::from_str(&store.ok(&["inspect", "user"])).unwrap();
    assert_eq!(report[0]["HostConfig"]["Binds"], json!([bind]));
    store.ok(&["rm", "-v", "user"]);
    store.sh(
        &["-v", "twice:/data"],
        "head -c 100000 /dev/zero > /data/blob",
    );
    let df = store.ok(&["system", "df"]);
    let line = df.lines().find(|l| l.starts_with("Local Volumes")).unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&fields[2..4], ["2", "0"], "{df}");
    assert!(fields[4].ends_with("kB"), "{df}");
    // system prune --volumes takes anonymous unused volumes only.
    store.ok(&[
        "run",
        "--name",
        "gone",
        "--network",
        "none",
        "-v",
        "/tmpvol",
        image(),
        "true",
    ]);
    store.ok(&["stop", "gone"]);
    // The container goes first, then its anonymous volumes, in one prune.
    let pruned = store.ok(&["system", "prune", "-f", "--volumes"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    assert!(pruned.contains("Deleted Volumes:"), "{pruned}");
    let mut listed = store.volumes();
    listed.sort();
    let mut expected = vec!["twice".to_string(), random.trim().to_string()];
    expected.sort();
    assert_eq!(listed, expected, "named volumes stay");
}
