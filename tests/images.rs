//! Pulling from a real registry into the store: `pull`, `images`, `rmi`,
//! `image prune`, `image inspect`, against Debian's docker-registry filled
//! by skopeo with images built here.

mod common;

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::oci::{self, Compression, Layer};
use common::registry::{push_image, registries_conf, write_registries_conf, TestRegistry};
use common::*;
use serde_json::json;

struct Images {
    registry: TestRegistry,
    /// A second registry that demands basic auth.
    private: TestRegistry,
}

const USER: &str = "tester";
const PASSWORD: &str = "s3cret-pass";

static IMAGES: OnceLock<Images> = OnceLock::new();

/// One registry per test binary, marked insecure (plain HTTP) in the test
/// user's registries.conf, holding the images the tests pull.
fn images() -> &'static Images {
    IMAGES.get_or_init(|| {
        let h = harness();
        let registry = TestRegistry::start(&h.base.join("registry"), None);
        let private = TestRegistry::start_with_login(&h.base.join("private"), USER, PASSWORD);
        write_registries_conf(
            &h.base.join("config"),
            &registries_conf(&[&registry, &private]),
        );
        Images { registry, private }
    })
}

fn layout(name: &str) -> PathBuf {
    let dir = harness().base.join("layouts").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Pushes a single-platform image made of `layers` as `name`.
fn push(name: &str, layers: Vec<Layer>, config: serde_json::Value) -> String {
    push_to(&images().registry, name, layers, config)
}

fn push_to(
    registry: &TestRegistry,
    name: &str,
    layers: Vec<Layer>,
    config: serde_json::Value,
) -> String {
    push_image(
        registry,
        &harness().base.join("layouts"),
        name,
        layers,
        config,
    )
}

fn busybox_image(name: &str) -> String {
    let tar = oci::tar_of_dir(&harness().rootfs);
    push(
        name,
        vec![Layer {
            tar,
            compression: Compression::Gzip,
        }],
        json!({"Cmd": ["sh"]}),
    )
}

fn rocker(args: &[&str]) -> Output {
    let mut command = harness().rocker();
    command.args(args);
    output_within(command, Duration::from_secs(120))
}

fn store() -> PathBuf {
    harness().base.join("data/rocker")
}

/// rocker with a data dir (and so a store) of its own, for tests that look
/// at the store's temp dir while other tests pull in parallel.
fn rocker_in(data: &std::path::Path, args: &[&str]) -> Output {
    let mut command = harness().rocker_in(data);
    command.args(args);
    output_within(command, Duration::from_secs(120))
}

fn inspect(image: &str) -> serde_json::Value {
    let report: serde_json::Value =
        serde_json::from_str(&ok(rocker(&["image", "inspect", image]))).unwrap();
    report[0].clone()
}

fn layer_dir(report: &serde_json::Value, index: usize) -> PathBuf {
    PathBuf::from(report["Layers"][index]["Path"].as_str().unwrap())
}

/// Where the store keeps a layer's compressed blob.
fn layer_blob(report: &serde_json::Value, index: usize) -> PathBuf {
    let digest = report["Layers"][index]["Digest"].as_str().unwrap();
    store()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[test]
fn a_store_without_a_layers_blob_gets_it_on_the_next_pull_without_extracting_again() {
    let image = push(
        "blobless:1",
        vec![Layer {
            tar: oci::tar_of(&[("kept", "k")]),
            compression: Compression::Zstd,
        }],
        json!({}),
    );
    ok(rocker(&["pull", &image]));
    let report = inspect(&image);
    let blob = layer_blob(&report, 0);
    let registry_copy = std::fs::read(
        images()
            .registry
            .blob_file(report["Layers"][0]["Digest"].as_str().unwrap()),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(&blob).unwrap(),
        registry_copy,
        "kept byte for byte"
    );
    // As a store from before blobs were kept: the directory, no blob.
    std::fs::remove_file(&blob).unwrap();
    let dir_inode = std::fs::metadata(layer_dir(&report, 0)).unwrap().ino();
    ok(rocker(&["pull", &image]));
    assert_eq!(std::fs::read(&blob).unwrap(), registry_copy);
    assert_eq!(
        std::fs::metadata(layer_dir(&report, 0)).unwrap().ino(),
        dir_inode,
        "the extracted layer stays as it was"
    );
}

#[test]
fn pull_list_inspect_and_remove() {
    let image = busybox_image("busybox:1");
    let out = ok(rocker(&["pull", &image]));
    let id = out.trim();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");

    let listed = ok(rocker(&["images"]));
    assert!(
        listed.lines().next().unwrap().starts_with("REPOSITORY"),
        "{listed}"
    );
    let line = listed
        .lines()
        .find(|l| l.contains("/busybox "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(line.contains(" 1 ") && line.contains(&id[7..19]), "{line}");
    // docker's --format json: one object per line, docker's fields.
    let json: Vec<serde_json::Value> = ok(rocker(&["images", "--no-trunc", "--format", "json"]))
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let entry = json
        .iter()
        .find(|i| i["Tag"] == "1" && i["Repository"].as_str().unwrap().ends_with("/busybox"))
        .unwrap();
    assert_eq!(entry["ID"], id);
    // SIZE is the extracted size, as docker's; the download is compressed.
    let (size, download) = (
        entry["SizeBytes"].as_u64().unwrap(),
        entry["DownloadSizeBytes"].as_u64().unwrap(),
    );
    assert!(size > download, "{size} extracted, {download} downloaded");
    assert!(entry["Size"].as_str().unwrap().ends_with("B"), "{entry}");
    // CREATED comes from the config (the test images say 2026-01-01).
    assert_eq!(entry["CreatedAt"], "2026-01-01T00:00:00.000000000Z");
    assert!(line.contains(" ago "), "{line}");
    assert!(ok(rocker(&["images", "-q"])).contains(&id[7..19]));

    let report = inspect(&image);
    assert_eq!(report["Id"], id);
    assert_eq!(report["Config"]["Cmd"], json!(["sh"]));
    let layer = layer_dir(&report, 0);
    assert!(
        layer.starts_with(store().join("layers")),
        "{}",
        layer.display()
    );
    let busybox = std::fs::metadata(layer.join("bin/busybox")).unwrap();
    assert_eq!(
        busybox.uid(),
        harness().uid,
        "layer files belong to the caller"
    );
    assert_eq!(
        std::fs::read_link(layer.join("bin/sh")).unwrap(),
        PathBuf::from("busybox")
    );

    // By digest too: the same image, a new name.
    let digest = report["Digest"].as_str().unwrap();
    let by_digest = format!("{}/busybox@{digest}", images().registry.host());
    assert_eq!(ok(rocker(&["pull", "-q", &by_digest])).trim(), id);

    let out = ok(rocker(&["rmi", &image]));
    assert!(out.contains("Untagged:"), "{out}");
    // The digest name still holds the layer.
    assert!(layer.exists());
    ok(rocker(&["rmi", &by_digest]));
    assert!(
        !layer.exists(),
        "the last user of the layer is gone, so is the layer"
    );
    let output = rocker(&["rmi", &image]);
    assert_eq!(code(&output), 1);
    assert!(
        stderr(&output).contains("no such image"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn whiteouts_opaque_dirs_and_zstd_layers() {
    let base = oci::tar_of(&[
        ("etc/", ""),
        ("etc/gone", "x"),
        ("etc/kept", "k"),
        ("var/", ""),
        ("var/cache/", ""),
        ("var/cache/old", "o"),
    ]);
    let top = oci::tar_of(&[
        ("etc/.wh.gone", ""),
        ("var/cache/.wh..wh..opq", ""),
        ("var/cache/new", "n"),
    ]);
    let image = push(
        "layered:1",
        vec![
            Layer {
                tar: base,
                compression: Compression::Gzip,
            },
            Layer {
                tar: top,
                compression: Compression::Zstd,
            },
        ],
        json!({}),
    );
    ok(rocker(&["pull", &image]));
    let report = inspect(&image);
    let upper = layer_dir(&report, 1);
    let whiteout = std::fs::symlink_metadata(upper.join("etc/gone")).unwrap();
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    let opaque = opaque_mark(&upper.join("var/cache"));
    assert_eq!(opaque, "y");
    assert_eq!(
        std::fs::read_to_string(upper.join("var/cache/new")).unwrap(),
        "n"
    );
    assert_eq!(
        std::fs::read_to_string(layer_dir(&report, 0).join("etc/kept")).unwrap(),
        "k"
    );
}

/// The `user.overlay.opaque` xattr of a directory, as overlayfs reads it.
fn opaque_mark(path: &std::path::Path) -> String {
    let value =
        rocker::util::xattr::get(path, rocker::util::xattr::OVERLAY_OPAQUE).unwrap_or_default();
    String::from_utf8(value).unwrap()
}

#[test]
fn multi_platform_indexes_pick_the_platform() {
    let images = images();
    let dir = layout("multi");
    let amd = Layer {
        tar: oci::tar_of(&[("arch", "amd64")]),
        compression: Compression::Gzip,
    };
    let arm = Layer {
        tar: oci::tar_of(&[("arch", "arm64")]),
        compression: Compression::Gzip,
    };
    oci::write_multi_platform(&dir, vec![(vec![amd], "amd64"), (vec![arm], "arm64")]);
    images.registry.push(&dir, "multi:1");
    let image = format!("{}/multi:1", images.registry.host());

    ok(rocker(&["pull", &image]));
    let report = inspect(&image);
    assert_eq!(report["Platform"], "linux/amd64");
    assert_eq!(
        std::fs::read_to_string(layer_dir(&report, 0).join("arch")).unwrap(),
        "amd64"
    );

    ok(rocker(&["pull", "--platform", "linux/arm64", &image]));
    let report = inspect(&image);
    assert_eq!(report["Platform"], "linux/arm64");
    assert_eq!(
        std::fs::read_to_string(layer_dir(&report, 0).join("arch")).unwrap(),
        "arm64"
    );

    let output = rocker(&["pull", "--platform", "linux/s390x", &image]);
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains("available: linux/amd64, linux/arm64"),
        "{}",
        stderr(&output)
    );

    // create (and run) --platform pull the image again when the store has
    // it for another platform.
    ok(rocker(&[
        "create",
        "--platform",
        "linux/amd64",
        "--name",
        "multi-amd",
        &image,
        "/arch",
    ]));
    assert_eq!(inspect(&image)["Platform"], "linux/amd64");
    ok(rocker(&["rm", "multi-amd"]));
}

#[test]
fn missing_images_and_bad_references_fail_clearly() {
    let images = images();
    let output = rocker(&[
        "pull",
        &format!("{}/no-such-image:1", images.registry.host()),
    ]);
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains("image not found"),
        "{}",
        stderr(&output)
    );
    let output = rocker(&["pull", "Bad:Ref:x"]);
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains("expected [REGISTRY"),
        "{}",
        stderr(&output)
    );
    // A registry that is not marked insecure is only spoken to over TLS.
    let output = rocker(&["pull", "127.0.0.1:1/nothing-listens:1"]);
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains("cannot reach 127.0.0.1:1"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_corrupt_blob_fails_the_pull_naming_it() {
    let tar = oci::tar_of(&[("file", "original content")]);
    let image = push(
        "corrupt:1",
        vec![Layer {
            tar,
            compression: Compression::Gzip,
        }],
        json!({}),
    );
    // The blob's digest as the registry serves it (skopeo may recompress).
    ok(rocker(&["pull", &image]));
    let digest = inspect(&image)["Layers"][0]["Digest"]
        .as_str()
        .unwrap()
        .to_string();
    ok(rocker(&["rmi", &image]));

    let blob = images().registry.blob_file(&digest);
    let good = std::fs::read(&blob).unwrap();
    let mut bad = good.clone();
    let at = bad.len() / 2;
    bad[at] ^= 0xff;
    std::fs::write(&blob, &bad).unwrap();
    let data = harness().scratch("corrupt-store");
    let output = rocker_in(&data, &["pull", &image]);
    std::fs::write(&blob, &good).unwrap();
    assert_eq!(code(&output), 125);
    assert!(stderr(&output).contains(&digest), "{}", stderr(&output));
    let leftovers: Vec<_> = std::fs::read_dir(data.join("rocker/tmp"))
        .unwrap()
        .collect();
    assert!(leftovers.is_empty(), "temp debris after a failed pull");
    assert_eq!(
        code(&rocker_in(&data, &["image", "inspect", &image])),
        1,
        "a failed pull lists no image"
    );
    // Restored, it pulls.
    ok(rocker_in(&data, &["pull", &image]));
}

#[test]
fn concurrent_pulls_of_one_image_all_succeed() {
    let image = push(
        "concurrent:1",
        vec![
            Layer {
                tar: oci::tar_of(&[("a", "1")]),
                compression: Compression::Gzip,
            },
            Layer {
                tar: oci::tar_of(&[("b", "2")]),
                compression: Compression::Gzip,
            },
        ],
        json!({}),
    );
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut command = harness().rocker();
            command
                .args(["pull", "-q", &image])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    let ids: Vec<String> = children
        .into_iter()
        .map(|child| ok(wait_output(child, Duration::from_secs(120))))
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let report = inspect(&image);
    assert_eq!(report["Layers"].as_array().unwrap().len(), 2);
}

#[test]
fn a_killed_pull_leaves_nothing_to_trip_on() {
    let h = harness();
    let mut content = String::new();
    let mut seed: u64 = 42;
    while content.len() < 4 << 20 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        content.push_str(&format!("{seed:x}\n"));
    }
    let image = push(
        "killed:1",
        vec![Layer {
            tar: oci::tar_of(&[("big", &content)]),
            compression: Compression::Gzip,
        }],
        json!({}),
    );
    // Through a proxy at 10 kB/s, the pull is surely mid-way when killed.
    let target = images().registry.host();
    let proxy = common::registry::trickling_proxy(target.clone(), Duration::from_micros(100));
    let config = h.scratch("killed-config");
    write_registries_conf(
        &config,
        &format!(
            "[[registry]]\nlocation = \"{proxy}\"\ninsecure = true\n\n\
             [[registry]]\nlocation = \"{target}\"\ninsecure = true\n"
        ),
    );
    let data = h.scratch("killed-store");
    let with_config = |args: &[&str]| {
        let mut command = h.rocker_in(&data);
        command.env("XDG_CONFIG_HOME", &config).args(args);
        command
    };
    let mut child = spawn_quiet(with_config(&[
        "pull",
        "-q",
        &image.replace(&target, &proxy),
    ]));
    // Wait until a layer is on its way (its temp dir exists), then kill.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let tmp = data.join("rocker/tmp");
    while !std::fs::read_dir(&tmp).is_ok_and(|mut d| d.next().is_some()) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pull ended before it was killed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the pull never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the pull ended before it was killed"
    );
    child.kill().unwrap();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "killed mid-way, not finished");

    ok(output_within(
        with_config(&["images"]),
        Duration::from_secs(30),
    ));
    ok(output_within(
        with_config(&["pull", "-q", &image]),
        Duration::from_secs(120),
    ));
    let report: serde_json::Value = serde_json::from_str(&ok(output_within(
        with_config(&["image", "inspect", &image]),
        Duration::from_secs(30),
    )))
    .unwrap();
    let report = report[0].clone();
    let big = std::fs::read_to_string(layer_dir(&report, 0).join("big")).unwrap();
    assert_eq!(big.len(), content.len());
    let leftovers: Vec<_> = std::fs::read_dir(&tmp)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(leftovers.is_empty(), "temp debris: {leftovers:?}");
}

#[test]
fn rmi_keeps_shared_layers_and_prune_drops_unused_ones() {
    let shared = oci::tar_of(&[("shared", "s")]);
    let first = push(
        "share-a:1",
        vec![
            Layer {
                tar: shared.clone(),
                compression: Compression::Gzip,
            },
            Layer {
                tar: oci::tar_of(&[("only-a", "a")]),
                compression: Compression::Gzip,
            },
        ],
        json!({}),
    );
    let second = push(
        "share-b:1",
        vec![
            Layer {
                tar: shared.clone(),
                compression: Compression::Gzip,
            },
            Layer {
                tar: oci::tar_of(&[("only-b", "b")]),
                compression: Compression::Gzip,
            },
        ],
        json!({}),
    );
    ok(rocker(&["pull", &first]));
    ok(rocker(&["pull", &second]));
    let a = inspect(&first);
    let b = inspect(&second);
    assert_eq!(
        layer_dir(&a, 0),
        layer_dir(&b, 0),
        "one directory for the shared layer"
    );
    // Each layer's compressed blob is kept beside its directory.
    for report in [&a, &b] {
        for index in 0..2 {
            assert!(layer_blob(report, index).is_file(), "{report}");
        }
    }
    ok(rocker(&["rmi", &first]));
    assert!(layer_dir(&b, 0).exists(), "the shared layer must stay");
    assert!(layer_blob(&b, 0).exists(), "and its blob");
    assert!(!layer_dir(&a, 1).exists(), "a's own layer goes");
    assert!(!layer_blob(&a, 1).exists(), "a's own blob goes with it");

    // A layer nothing refers to (a pull killed after extracting it).
    let orphan = store().join("layers").join("0".repeat(64));
    std::fs::create_dir_all(orphan.join("dir")).unwrap();
    harness().give_tree(&orphan);
    let out = ok(rocker(&["image", "prune"]));
    assert!(out.contains("Deleted 1 unused layers"), "{out}");
    assert!(!orphan.exists());
    assert!(layer_dir(&b, 1).exists());
}

#[test]
fn a_decompression_bomb_stops_at_the_configured_size() {
    let h = harness();
    // 64 MiB of zeros gzip to about 64 KiB.
    let zeros = "\0".repeat(64 << 20);
    let image = push(
        "bomb:1",
        vec![Layer {
            tar: oci::tar_of(&[("zeros", &zeros)]),
            compression: Compression::Gzip,
        }],
        json!({}),
    );
    let config = h.scratch("bomb-config");
    std::fs::create_dir_all(config.join("rocker")).unwrap();
    std::fs::write(
        config.join("rocker/config.toml"),
        "[images]\nmax_layer_size = \"8M\"\n",
    )
    .unwrap();
    write_registries_conf(&config, &registries_conf(&[&images().registry]));
    let data = h.scratch("bomb-store");
    let mut command = h.rocker_in(&data);
    command
        .env("XDG_CONFIG_HOME", &config)
        .args(["pull", &image]);
    let output = output_within(command, Duration::from_secs(60));
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains("decompresses to more than 8388608 bytes"),
        "{}",
        stderr(&output)
    );
    assert_no_layers_or_temp_dirs(&data);
}

/// Layers each under the per-layer limit can still add up: a pull stops
/// at `max_image_size` for all its layers together.
#[test]
fn an_image_stops_at_the_configured_total_size() {
    let h = harness();
    let zeros = "\0".repeat(6 << 20);
    let layer = |name: &str| Layer {
        tar: oci::tar_of(&[(name, &zeros)]),
        compression: Compression::Gzip,
    };
    let two = push("two-bombs:1", vec![layer("a"), layer("b")], json!({}));
    let one = push("one-bomb:1", vec![layer("c")], json!({}));
    let config = h.scratch("image-size-config");
    std::fs::create_dir_all(config.join("rocker")).unwrap();
    std::fs::write(
        config.join("rocker/config.toml"),
        "[images]\nmax_image_size = \"10M\"\n",
    )
    .unwrap();
    write_registries_conf(&config, &registries_conf(&[&images().registry]));
    let data = h.scratch("image-size-store");
    let pull = |image: &str| {
        let mut command = h.rocker_in(&data);
        command
            .env("XDG_CONFIG_HOME", &config)
            .args(["pull", "-q", image]);
        output_within(command, Duration::from_secs(60))
    };
    let output = pull(&two);
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains("decompress to more than 10485760 bytes together"),
        "{}",
        stderr(&output)
    );
    ok(pull(&one));
}

/// A directory entry of `depth` levels (`d/d/.../d/`).
fn deep_dir_entry(builder: &mut tar::Builder<Vec<u8>>, depth: usize) {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_size(0);
    header.set_mode(0o755);
    builder
        .append_data(&mut header, "d/".repeat(depth), &b""[..])
        .unwrap();
}

/// `rocker pull IMAGE` in its own store under /usr/bin/time: its peak RSS
/// in KiB and its CPU seconds (user and system), counters that a loaded
/// machine does not skew as it skews wall time.
fn pull_counted(name: &str, image: &str) -> (u64, f64) {
    require("/usr/bin/time", "time");
    let h = harness();
    let data = h.scratch(name);
    let mut command = h.command_as_user("/usr/bin/time");
    command
        .env("XDG_DATA_HOME", &data)
        .args(["-f", "counted %M %U %S"])
        .arg(&h.binary)
        .args(["pull", "-q", image]);
    let output = output_within(command, Duration::from_secs(300));
    let text = stderr(&output);
    assert_eq!(code(&output), 0, "{text}");
    let counted = text
        .lines()
        .find_map(|l| l.strip_prefix("counted "))
        .unwrap();
    let fields: Vec<&str> = counted.split_whitespace().collect();
    let rss: u64 = fields[0].parse().unwrap();
    let cpu: f64 = fields[1].parse::<f64>().unwrap() + fields[2].parse::<f64>().unwrap();
    (rss, cpu)
}

/// Deep directories, repeated or nested, cost in proportion to the layer:
/// one 2000-level directory listed 3000 times, and a chain of 2000 nested
/// directories, each a few tens of KiB compressed.
#[test]
fn deep_directory_bombs_cost_in_proportion_to_the_layer() {
    let mut repeated = tar::Builder::new(Vec::new());
    for _ in 0..3000 {
        deep_dir_entry(&mut repeated, 2000);
    }
    let mut chain = tar::Builder::new(Vec::new());
    for depth in 1..=2000 {
        deep_dir_entry(&mut chain, depth);
    }
    for (name, builder) in [("repeated-deep-dir", repeated), ("deep-chain", chain)] {
        let image = push(
            &format!("{name}:1"),
            vec![Layer {
                tar: builder.into_inner().unwrap(),
                compression: Compression::Gzip,
            }],
            json!({}),
        );
        let (rss_kib, cpu_seconds) = pull_counted(&format!("{name}-store"), &image);
        assert!(rss_kib < 150 * 1024, "{name}: {rss_kib} KiB at its peak");
        assert!(cpu_seconds < 10.0, "{name}: {cpu_seconds} s of CPU");
    }
}

/// A failed pull leaves the store without layers and without temp dirs.
fn assert_no_layers_or_temp_dirs(data: &std::path::Path) {
    for dir in ["rocker/layers", "rocker/tmp"] {
        let entries = std::fs::read_dir(data.join(dir)).unwrap().count();
        assert_eq!(entries, 0, "{dir} is not empty");
    }
}

#[test]
fn a_hostile_layer_fails_and_writes_nothing_outside_the_store() {
    let h = harness();
    let target = h.scratch("hostile-target");
    let mut builder = tar::Builder::new(Vec::new());
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_mode(0o777);
    builder.append_link(&mut link, "escape", &target).unwrap();
    let mut file = tar::Header::new_gnu();
    file.set_size(4);
    file.set_mode(0o644);
    builder
        .append_data(&mut file, "escape/evil", &b"evil"[..])
        .unwrap();
    let image = push(
        "hostile:1",
        vec![Layer {
            tar: builder.into_inner().unwrap(),
            compression: Compression::Gzip,
        }],
        json!({}),
    );
    let data = h.scratch("hostile-store");
    let output = rocker_in(&data, &["pull", &image]);
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains("escape is a symbolic link; refusing to write through it"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_dir(&target).unwrap().count(),
        0,
        "something was written outside"
    );
    assert_no_layers_or_temp_dirs(&data);
}

/// A whiteout of `..` at a layer's root would name the store's tmp dir,
/// where other pulls are at work: the layer is refused, and a live
/// process's temp dir (as a concurrent pull's) is still there.
#[test]
fn a_whiteout_of_dot_dot_is_refused_and_other_pulls_keep_their_work() {
    let h = harness();
    let mut builder = tar::Builder::new(Vec::new());
    let mut whiteout = tar::Header::new_gnu();
    whiteout.set_size(0);
    whiteout.set_mode(0o644);
    builder
        .append_data(&mut whiteout, ".wh...", &b""[..])
        .unwrap();
    let image = push(
        "whiteout-dotdot:1",
        vec![Layer {
            tar: builder.into_inner().unwrap(),
            compression: Compression::Gzip,
        }],
        json!({}),
    );
    let data = h.scratch("whiteout-store");
    // Another pull's temp dir: named for a live process (this one).
    let other = data.join(format!("rocker/tmp/{}-other-pull", std::process::id()));
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("half-done"), "work").unwrap();
    h.give_tree(&data);
    let output = rocker_in(&data, &["pull", &image]);
    assert_eq!(code(&output), 125, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("no entry of its directory"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(other.join("half-done")).unwrap(),
        "work"
    );
}

#[test]
fn login_stores_credentials_that_pulls_use() {
    let h = harness();
    let private = &images().private;
    let tar = oci::tar_of(&[("secret", "only for logged-in users")]);
    let image = push_to(
        private,
        "private:1",
        vec![Layer {
            tar,
            compression: Compression::Gzip,
        }],
        json!({}),
    );
    let runtime = h.scratch("login-runtime");
    let run = |args: &[&str], stdin: &str| {
        let mut command = h.rocker_with_runtime(&runtime);
        command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
        wait_output(child, Duration::from_secs(60))
    };
    let host = private.host();

    let output = run(&["pull", &image], "");
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains(&format!("rocker login {host}")),
        "{}",
        stderr(&output)
    );

    let output = run(&["login", "-u", USER, "--password-stdin", &host], "wrong\n");
    assert_eq!(code(&output), 125, "{}", stderr(&output));
    let auth_file = runtime.join("containers/auth.json");
    assert!(!auth_file.exists(), "bad credentials were stored");

    let output = run(
        &["login", "-u", USER, "--password-stdin", &host],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(stdout(&output), "Login Succeeded\n", "{}", stderr(&output));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&auth_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The ecosystem's format: base64 of user:password, never the raw password.
    assert!(!std::fs::read_to_string(&auth_file)
        .unwrap()
        .contains(PASSWORD));

    ok(run(&["pull", &image], ""));
    assert_eq!(
        stdout(&run(&["logout", &host], "")),
        format!("Removed login credentials for {host}\n")
    );
    ok(run(&["rmi", &image], ""));
    assert_eq!(code(&run(&["pull", &image], "")), 125);
}

#[test]
fn mirrors_are_tried_first_then_the_registry() {
    let h = harness();
    let images = images();
    let registry = &images.registry;
    let mirror = TestRegistry::start(&h.base.join("mirror"), None);
    let layer = |text: &str| Layer {
        tar: oci::tar_of(&[("origin", text)]),
        compression: Compression::Gzip,
    };
    let image = push_to(registry, "mirrored:1", vec![layer("registry")], json!({}));
    let only_upstream = push_to(
        registry,
        "upstream-only:1",
        vec![layer("registry")],
        json!({}),
    );
    // The mirror serves the same name with other content, so the test can
    // tell where a pull came from.
    push_to(&mirror, "mirrored:1", vec![layer("mirror")], json!({}));

    let config = h.scratch("mirror-config");
    write_registries_conf(
        &config,
        &format!(
            "[[registry]]\nlocation = \"{}\"\ninsecure = true\n\n[[registry.mirror]]\nlocation = \"{}\"\ninsecure = true\n",
            registry.host(),
            mirror.host()
        ),
    );
    let data = h.scratch("mirror-store");
    let run = |args: &[&str]| {
        let mut command = h.rocker_in(&data);
        command.env("XDG_CONFIG_HOME", &config).args(args);
        output_within(command, Duration::from_secs(60))
    };
    let origin = |image: &str| {
        let report: serde_json::Value =
            serde_json::from_str(&ok(run(&["image", "inspect", image]))).unwrap();
        std::fs::read_to_string(layer_dir(&report[0], 0).join("origin")).unwrap()
    };
    ok(run(&["pull", &image]));
    assert_eq!(origin(&image), "mirror");
    // Not on the mirror: the registry itself answers.
    ok(run(&["pull", &only_upstream]));
    assert_eq!(origin(&only_upstream), "registry");
}

/// `tag` gives an image another name (normalized as pull names images);
/// `rmi` of one name keeps the others, and an id names the image whatever
/// its names.
#[test]
fn tag_adds_a_name_and_rmi_of_one_name_keeps_the_others() {
    let image = busybox_image("tag-source:1");
    let data = harness().scratch("tag-store");
    let id = ok(rocker_in(&data, &["pull", "-q", &image]))
        .trim()
        .to_string();
    ok(rocker_in(&data, &["tag", &image, "team/app:2"]));
    ok(rocker_in(
        &data,
        &["image", "tag", &id[7..19], "registry.example/x/y"],
    ));
    let listed = ok(rocker_in(&data, &["images"]));
    for name in ["docker.io/team/app", "registry.example/x/y"] {
        let line = listed
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap_or_else(|| panic!("{name} is not listed: {listed}"));
        assert!(line.contains(&id[7..19]), "{line}");
    }
    let tag_of = |name: &str| {
        listed
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .and_then(|l| l.split_whitespace().nth(1))
            .map(str::to_string)
    };
    assert_eq!(tag_of("registry.example/x/y").as_deref(), Some("latest"));
    let refused = rocker_in(&data, &["tag", &image, &format!("x/y@{id}")]);
    assert_eq!(code(&refused), 125, "{}", stderr(&refused));
    let missing = rocker_in(&data, &["tag", "no/such:image", "x/y"]);
    assert_eq!(code(&missing), 1, "{}", stderr(&missing));

    // The id is one image under three names: it runs, unambiguous.
    let run = |name: &str| {
        rocker_in(
            &data,
            &[
                "run",
                "--rm",
                "--pull",
                "never",
                "--network",
                "none",
                name,
                "true",
            ],
        )
    };
    ok(run(&id[7..19]));
    // inspect by id: one image, with its three names.
    let by_id: serde_json::Value =
        serde_json::from_str(&ok(rocker_in(&data, &["image", "inspect", &id]))).unwrap();
    assert_eq!(by_id.as_array().unwrap().len(), 1, "{by_id}");
    assert_eq!(by_id[0]["RepoTags"].as_array().unwrap().len(), 3, "{by_id}");
    ok(rocker_in(&data, &["rmi", &image]));
    ok(run("team/app:2"));
    let listed = ok(rocker_in(&data, &["images"]));
    assert!(!listed.contains("tag-source"), "{listed}");
    ok(rocker_in(
        &data,
        &["rmi", "team/app:2", "registry.example/x/y"],
    ));
    assert_eq!(
        std::fs::read_dir(data.join("rocker/layers"))
            .unwrap()
            .count(),
        0
    );
}

/// `history` lists the config's history, newest first, each step with the
/// size of the layer it made (none for an `empty_layer` step).
#[test]
fn history_lists_how_each_layer_was_made() {
    let first = oci::tar_of(&[("one", &"1".repeat(3000))]);
    let second = oci::tar_of(&[("two", &"2".repeat(5000))]);
    let long = format!("/bin/sh -c echo {}", "x".repeat(60));
    let image = push(
        "history:1",
        vec![
            Layer {
                tar: first,
                compression: Compression::Gzip,
            },
            Layer {
                tar: second,
                compression: Compression::Gzip,
            },
        ],
        json!({"history": [
            {"created": "2024-02-29T12:34:56Z", "created_by": "ADD one /"},
            {"created": "2024-02-29T12:35:00Z", "created_by": "ENV A=b", "empty_layer": true},
            {"created": "2024-03-01T08:00:00Z", "created_by": long, "comment": "made by hand"}
        ]}),
    );
    let data = harness().scratch("history-store");
    let id = ok(rocker_in(&data, &["pull", "-q", &image]))
        .trim()
        .to_string();
    let list: serde_json::Value = serde_json::from_str(&ok(rocker_in(
        &data,
        &["history", "--format", "json", &image],
    )))
    .unwrap();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{list}");
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["created_by"], long.as_str());
    assert_eq!(rows[0]["size"], 5000);
    assert_eq!(rows[0]["comment"], "made by hand");
    assert_eq!(rows[0]["created"], "2024-03-01T08:00:00.000000000Z");
    assert_eq!(rows[1]["id"], "<missing>");
    assert_eq!(rows[1]["size"], 0);
    assert_eq!(rows[2]["created_by"], "ADD one /");
    assert_eq!(rows[2]["size"], 3000);

    let table = ok(rocker_in(&data, &["image", "history", &image]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE") && lines[0].contains("CREATED BY"),
        "{table}"
    );
    assert!(
        lines[1].starts_with(&id[7..19]) && lines[1].contains('…'),
        "{table}"
    );
    assert!(
        lines[2].starts_with("<missing>") && lines[2].contains("ENV A=b"),
        "{table}"
    );
    assert!(ok(rocker_in(&data, &["history", "--no-trunc", &image])).contains(&long));
    assert_eq!(
        ok(rocker_in(&data, &["history", "-q", &image])),
        format!("{}\n<missing>\n<missing>\n", &id[7..19])
    );
}

/// Valid images the kernel overlay cannot stack as they are: a layer
/// listed twice runs on it (the lower copy is dropped: the upper one
/// shadows all it would), and past the kernel's 500 lower layers rocker
/// runs the container on fuse-overlayfs, saying so.
#[test]
fn a_repeated_layer_and_more_layers_than_the_kernel_stacks_still_run() {
    let base = || Layer {
        tar: oci::tar_of_dir(&harness().rootfs),
        compression: Compression::Gzip,
    };
    let marker = || Layer {
        tar: oci::tar_of(&[("marker", "from the repeated layer")]),
        compression: Compression::None,
    };
    let other = Layer {
        tar: oci::tar_of(&[("marker", "from the layer between")]),
        compression: Compression::None,
    };
    let image = push(
        "twice:1",
        vec![base(), marker(), other, marker()],
        json!({}),
    );
    let data = harness().scratch("twice-data");
    let out = overlay_run(&data, &["run", "--rm", "-q", &image, "cat", "/marker"]);
    assert_eq!(ok(out), "from the repeated layer");

    let mut layers = vec![base()];
    for n in 1..=510 {
        let name = format!("layers/{n}");
        layers.push(Layer {
            tar: oci::tar_of(&[("layers/", ""), (&name, "x")]),
            compression: Compression::None,
        });
    }
    let image = push("chain:511", layers, json!({}));
    let data = harness().scratch("chain-511-data");
    let out = overlay_run(
        &data,
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
    assert!(
        stderr(&out).contains("using fuse-overlayfs for this container")
            && stderr(&out).contains("511 layers"),
        "{}",
        stderr(&out)
    );
    assert_eq!(ok(out).trim(), "510");
}

/// rocker with its own store and the kernel overlay forced.
fn overlay_run(data: &std::path::Path, args: &[&str]) -> Output {
    let mut command = harness().rocker_in(data);
    command.env("ROCKER_ROOTFS", "overlay").args(args);
    output_within(command, Duration::from_secs(300))
}

#[test]
fn a_corrupt_blob_is_reported_as_corrupt_not_as_a_bad_tar() {
    let tar = oci::tar_of(&[("a", &"x".repeat(200_000)), ("b", "y")]);
    let image = push(
        "corrupt-tar:1",
        vec![Layer {
            tar,
            compression: Compression::None,
        }],
        json!({}),
    );
    // The registry's copy, damaged in the middle of a tar header.
    let manifest: serde_json::Value = {
        let output = std::process::Command::new("/usr/bin/skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{image}"))
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let digest = manifest["layers"][0]["digest"].as_str().unwrap();
    let file = images().registry.blob_file(digest);
    let mut bytes = std::fs::read(&file).unwrap();
    for byte in &mut bytes[124..136] {
        *byte = b'z'; // the first entry's size field
    }
    std::fs::write(&file, bytes).unwrap();
    let data = harness().scratch("corrupt-pull");
    let output = rocker_in(&data, &["pull", &image]);
    assert_eq!(code(&output), 125);
    let said = stderr(&output);
    assert!(
        said.contains("blob is corrupt") && said.contains("pulling again may help"),
        "{said}"
    );
    assert!(said.contains(digest), "{said}");
}

#[test]
fn a_trickling_registry_is_given_up_and_holds_no_lock_meanwhile() {
    let h = harness();
    let image = busybox_image("trickled:1");
    let target = images().registry.host();
    let proxy = common::registry::trickling_proxy(target.clone(), Duration::from_millis(10));
    // A config home of its own: the proxy as an insecure registry, and a
    // low-speed floor the trickle (100 bytes a second) stays under.
    let config = h.scratch("trickle-config");
    write_registries_conf(
        &config,
        &format!("[[registry]]\nlocation = \"{proxy}\"\ninsecure = true\n"),
    );
    std::fs::create_dir_all(config.join("rocker")).unwrap();
    std::fs::write(
        config.join("rocker/config.toml"),
        "[registry]\nlow_speed_limit = \"1k\"\nlow_speed_time = 2\n",
    )
    .unwrap();
    h.give_tree(&config);
    let data = h.scratch("trickle-data");
    let through_proxy = image.replace(&target, &proxy);
    let mut pull = h.rocker_in(&data);
    pull.env("XDG_CONFIG_HOME", &config)
        .args(["pull", &through_proxy]);
    let pulling = spawn_collecting(pull);
    // Meanwhile the store is free for garbage collection.
    std::thread::sleep(Duration::from_millis(500));
    let started = std::time::Instant::now();
    let mut prune = h.rocker_in(&data);
    prune
        .env("XDG_CONFIG_HOME", &config)
        .args(["image", "prune"]);
    ok(output_within(prune, Duration::from_secs(30)));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "image prune waited on the pull"
    );
    let output = wait_output(pulling, Duration::from_secs(60));
    assert_eq!(code(&output), 125, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("less than 1024 bytes a second"),
        "{}",
        stderr(&output)
    );
}
