//! Images out of the store: `push` to real registries (Debian's
//! docker-registry), read back with skopeo and pulled into fresh stores.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use common::oci::{self, Compression, Layer};
use common::registry::{push_image, registries_conf, write_registries_conf, TestRegistry};
use common::*;
use serde_json::{json, Value};

struct Registries {
    /// Where the test images start, and pushes that may mount from them.
    source: TestRegistry,
    /// A second registry: pushes there upload every blob.
    other: TestRegistry,
    /// One that demands basic auth.
    private: TestRegistry,
}

const USER: &str = "pusher";
const PASSWORD: &str = "push-s3cret";

static REGISTRIES: OnceLock<Registries> = OnceLock::new();

fn registries() -> &'static Registries {
    REGISTRIES.get_or_init(|| {
        let h = harness();
        let source = TestRegistry::start(&h.base.join("source"), None);
        let other = TestRegistry::start(&h.base.join("other"), None);
        let private = TestRegistry::start_with_login(&h.base.join("private"), USER, PASSWORD);
        write_registries_conf(
            &h.base.join("config"),
            &registries_conf(&[&source, &other, &private]),
        );
        Registries {
            source,
            other,
            private,
        }
    })
}

fn rocker(args: &[&str]) -> Output {
    let mut command = harness().rocker();
    command.args(args);
    output_within(command, Duration::from_secs(180))
}

fn rocker_in(data: &Path, args: &[&str]) -> Output {
    let mut command = harness().rocker_in(data);
    command.args(args);
    output_within(command, Duration::from_secs(180))
}

/// A busybox image with one more layer, in the source registry, pulled.
fn pulled_busybox(name: &str, extra: Layer) -> String {
    let image = push_image(
        &registries().source,
        &harness().base.join("layouts"),
        name,
        vec![
            Layer {
                tar: oci::tar_of_dir(&harness().rootfs),
                compression: Compression::Gzip,
            },
            extra,
        ],
        json!({"Cmd": ["sh"]}),
    );
    ok(rocker(&["pull", &image]));
    image
}

/// `skopeo inspect [--raw]` of a registry image, as JSON.
fn skopeo_inspect(reference: &str, raw: bool, creds: Option<&str>) -> Value {
    let mut command = std::process::Command::new("/usr/bin/skopeo");
    command.args(["inspect", "--tls-verify=false"]);
    if raw {
        command.arg("--raw");
    }
    if let Some(creds) = creds {
        command.arg(format!("--creds={creds}"));
    }
    let output = command
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn skopeo_raw_digest(reference: &str) -> String {
    let output = std::process::Command::new("/usr/bin/skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(output.status.success());
    oci::sha256(&output.stdout)
}

/// The digest `push` printed: `TAG: digest: sha256:... size: N`.
fn pushed_digest(out: &str) -> String {
    out.split_whitespace()
        .skip_while(|w| *w != "digest:")
        .nth(1)
        .unwrap_or_else(|| panic!("no digest in {out:?}"))
        .to_string()
}

/// Blob uploads rocker made to `repository` (the PUTs that finish one)
/// and the chunks (PATCHes) among them.
fn uploads(registry: &TestRegistry, repository: &str) -> (usize, usize) {
    let requests = registry.rocker_requests();
    let prefix = format!("/v2/{repository}/blobs/uploads/");
    let count = |method: &str| {
        requests
            .iter()
            .filter(|r| r.starts_with(&format!("{method} {prefix}")))
            .count()
    };
    (count("PUT"), count("PATCH"))
}

/// Pulls `image` into a store of its own and runs `args` in it.
fn pull_and_run_fresh(name: &str, image: &str, args: &[&str]) -> String {
    let data = harness().scratch(name);
    ok(rocker_in(&data, &["pull", "-q", image]));
    let mut run = vec!["run", "--rm", "--network", "none", image];
    run.extend_from_slice(args);
    ok(rocker_in(&data, &run))
}

#[test]
fn tag_push_and_pull_back_into_a_fresh_store() {
    let r = registries();
    let image = pulled_busybox(
        "src/busybox:1",
        Layer {
            tar: oci::tar_of(&[("etc/motd", "pushed by rocker\n")]),
            compression: Compression::Zstd,
        },
    );
    let target = format!("{}/team/busybox:2", r.source.host());
    ok(rocker(&["tag", &image, &target]));
    let output = rocker(&["push", &target]);
    let out = ok(output.clone());
    assert!(out.starts_with("2: digest: sha256:"), "{out}");
    assert!(
        stderr(&output).contains("0 layers sent, 2 mounted"),
        "same registry: the layers come by mount\n{}",
        stderr(&output)
    );
    // The same manifest, byte for byte: same digest as pulled.
    let stored: Value = serde_json::from_str(&ok(rocker(&["image", "inspect", &target]))).unwrap();
    assert_eq!(pushed_digest(&out), stored[0]["Digest"].as_str().unwrap());
    assert_eq!(skopeo_raw_digest(&target), pushed_digest(&out));
    assert_eq!(
        uploads(&r.source, "team/busybox"),
        (0, 0),
        "nothing uploaded"
    );

    let motd = pull_and_run_fresh("fresh-tagged", &target, &["cat", "/etc/motd"]);
    assert_eq!(motd, "pushed by rocker\n");

    // What push refuses, and says why.
    let id = stored[0]["Id"].as_str().unwrap();
    let output = rocker(&["push", &id[7..19]]);
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains("say where to push it"),
        "{}",
        stderr(&output)
    );
    let output = rocker(&["push", &target, "oci-archive:/tmp/x.tar"]);
    assert!(
        stderr(&output).contains("rocker save"),
        "{}",
        stderr(&output)
    );
    let output = rocker(&["push", "no-such-image:1"]);
    assert_eq!(code(&output), 1, "{}", stderr(&output));
}

#[test]
fn a_second_push_sends_no_layer_bytes_and_zstd_is_compressed_once() {
    let r = registries();
    let image = pulled_busybox(
        "src/again:1",
        Layer {
            tar: oci::tar_of(&[("again", "a")]),
            compression: Compression::Gzip,
        },
    );
    let target = format!("{}/team/again:1", r.other.host());
    let first = ok(rocker(&[
        "push",
        "-q",
        &image,
        &format!("docker://{target}"),
    ]));
    assert_eq!(first, "", "-q prints nothing");
    // Two layers and the config, each one upload.
    assert_eq!(uploads(&r.other, "team/again"), (3, 0));
    let output = rocker(&["push", &image, &target]);
    assert!(
        stderr(&output).contains("0 layers sent, 0 mounted, 2 already there"),
        "{}",
        stderr(&output)
    );
    assert_eq!(uploads(&r.other, "team/again"), (3, 0), "no more uploads");

    // zstd: compressed once, kept, and the same bytes the second time.
    let zstd = format!("{}/team/again:zstd", r.other.host());
    let digestfile = harness().scratch("digestfile").join("digest");
    let out = ok(rocker(&[
        "push",
        "--compression-format",
        "zstd",
        "--digestfile",
        digestfile.to_str().unwrap(),
        &image,
        &zstd,
    ]));
    assert_eq!(
        std::fs::read_to_string(&digestfile).unwrap(),
        pushed_digest(&out)
    );
    let manifest = skopeo_inspect(&zstd, true, None);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+zstd"
        );
    }
    assert_eq!(
        uploads(&r.other, "team/again"),
        (5, 0),
        "two new layer blobs"
    );
    let again = ok(rocker(&[
        "push",
        "--compression-format",
        "zstd",
        &image,
        &zstd,
    ]));
    assert_eq!(pushed_digest(&again), pushed_digest(&out), "the same bytes");
    assert_eq!(uploads(&r.other, "team/again"), (5, 0));
    let listing = pull_and_run_fresh("fresh-zstd", &zstd, &["cat", "/again"]);
    assert_eq!(listing, "a");

    // Docker's format, with its own media types; no zstd there.
    let v2s2 = format!("{}/team/again:v2s2", r.other.host());
    ok(rocker(&["push", "--format", "v2s2", &image, &v2s2]));
    let manifest = skopeo_inspect(&v2s2, true, None);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.docker.container.image.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    let output = rocker(&[
        "push",
        "--format",
        "v2s2",
        "--compression-format",
        "zstd",
        &image,
        &v2s2,
    ]);
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains("cannot carry zstd"),
        "{}",
        stderr(&output)
    );
}

/// Bytes that do not compress: a layer as big on the wire as on disk.
fn incompressible(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// A layer tar holding `big` as the file /big.
fn tar_with_big(big: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(big.len() as u64);
    header.set_mode(0o644);
    builder.append_data(&mut header, "big", big).unwrap();
    builder.into_inner().unwrap()
}

#[test]
fn a_large_layer_goes_in_chunks() {
    let r = registries();
    let big = incompressible(70 << 20);
    let image = pulled_busybox(
        "src/big:1",
        Layer {
            tar: tar_with_big(&big),
            compression: Compression::Gzip,
        },
    );
    let target = format!("{}/team/big:1", r.other.host());
    ok(rocker(&["push", &image, &target]));
    let (puts, patches) = uploads(&r.other, "team/big");
    assert_eq!(puts, 3, "each blob finished once");
    assert_eq!(patches, 3, "70 MiB in 32 MiB chunks");
    let sum = pull_and_run_fresh("fresh-big", &target, &["sha256sum", "/big"]);
    let expected = oci::sha256(&big);
    assert!(sum.starts_with(&expected[7..]), "{sum} vs {expected}");
}

#[test]
fn pushing_needs_credentials_and_a_refusal_carries_the_registrys_reason() {
    let r = registries();
    let h = harness();
    let image = pulled_busybox(
        "src/private:1",
        Layer {
            tar: oci::tar_of(&[("private", "p")]),
            compression: Compression::Gzip,
        },
    );
    let host = r.private.host();
    let target = format!("{host}/team/private:1");
    let runtime = h.scratch("push-runtime");
    let with_runtime = |args: &[&str]| {
        let mut command = h.rocker_with_runtime(&runtime);
        command.args(args);
        output_within(command, Duration::from_secs(120))
    };
    let output = with_runtime(&["push", &image, &target]);
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains(&format!("rocker login {host}")),
        "{}",
        stderr(&output)
    );

    // Credentials the registry refuses: its own words come through.
    let auth_file: PathBuf = runtime.join("containers/auth.json");
    std::fs::create_dir_all(auth_file.parent().unwrap()).unwrap();
    use base64::Engine;
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:wrong"));
    std::fs::write(
        &auth_file,
        format!(r#"{{"auths":{{"{host}":{{"auth":"{wrong}"}}}}}}"#),
    )
    .unwrap();
    h.give_tree(&runtime);
    let output = with_runtime(&["push", &image, &target]);
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains("UNAUTHORIZED: authentication required"),
        "{}",
        stderr(&output)
    );

    std::fs::remove_file(&auth_file).unwrap();
    let mut login = h.rocker_with_runtime(&runtime);
    login
        .args(["login", "-u", USER, "--password-stdin", &host])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = login.spawn().unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        format!("{PASSWORD}\n").as_bytes(),
    )
    .unwrap();
    ok(wait_output(child, Duration::from_secs(60)));
    ok(with_runtime(&["push", &image, &target]));
    let inspected = skopeo_inspect(&target, false, Some(&format!("{USER}:{PASSWORD}")));
    assert_eq!(inspected["Layers"].as_array().unwrap().len(), 2);
}

/// A layer with the owners an image has: root's /etc, app's file.
fn owned_layer() -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let entry = |path: &str, uid: u64, content: &[u8], dir: bool| {
        let mut header = tar::Header::new_gnu();
        header.set_uid(uid);
        header.set_gid(uid);
        header.set_size(content.len() as u64);
        header.set_mode(if dir { 0o755 } else { 0o644 });
        header.set_entry_type(if dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        (header, path.to_string(), content.to_vec())
    };
    for (mut header, path, content) in [
        entry("etc/", 0, b"", true),
        entry("etc/saved", 0, b"saved\n", false),
        entry("home/app/owned", 1000, b"app's\n", false),
        entry("home/app/kept", 1000, b"kept\n", false),
    ] {
        builder
            .append_data(&mut header, path, &content[..])
            .unwrap();
    }
    builder.into_inner().unwrap()
}

/// Every entry of a tar: name -> (uid, content for files).
fn tar_entries(bytes: &[u8]) -> Vec<(String, u64, Vec<u8>)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().to_string();
            let uid = entry.header().uid().unwrap();
            let mut content = vec![];
            std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
            (name, uid, content)
        })
        .collect()
}

/// The entries of the top layer of `image`, as `save` writes it (into
/// `dir`).
fn saved_top_layer(dir: &Path, image: &str) -> Vec<(String, u64, Vec<u8>)> {
    let archive = dir.join("saved.tar");
    ok(rocker(&["save", "-o", archive.to_str().unwrap(), image]));
    let bytes = std::fs::read(&archive).unwrap();
    let entries = tar_entries(&bytes);
    let member = |name: &str| &entries.iter().find(|(n, _, _)| n == name).unwrap().2;
    let manifest: Value = serde_json::from_slice(member("manifest.json")).unwrap();
    let layers = manifest[0]["Layers"].as_array().unwrap();
    tar_entries(member(layers.last().unwrap().as_str().unwrap()))
}

/// The names in the layer a commit made of `changed_container`, which
/// must hold what it did: added, changed, deleted.
fn entry_names(entries: &[(String, u64, Vec<u8>)]) -> Vec<&str> {
    let names: Vec<&str> = entries.iter().map(|(n, _, _)| n.as_str()).collect();
    for expected in [
        "added",
        "etc/saved",
        "home/app/.wh.owned",
        "home/app/kept",
        "opaque-not/file",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    names
}

fn skopeo(args: &[&str]) {
    let output = std::process::Command::new("/usr/bin/skopeo")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn save_writes_archives_docker_and_skopeo_read_and_load_reads_them_back() {
    let r = registries();
    let h = harness();
    let first = pulled_busybox(
        "src/saved:1",
        Layer {
            tar: owned_layer(),
            compression: Compression::Gzip,
        },
    );
    let second = pulled_busybox(
        "src/saved:2",
        Layer {
            tar: oci::tar_of(&[("second", "2")]),
            compression: Compression::Zstd,
        },
    );
    let dir = h.scratch("save");
    let archive = dir.join("two.tar");
    ok(rocker(&[
        "save",
        "-o",
        archive.to_str().unwrap(),
        &first,
        &second,
    ]));

    // docker save's shape: both images, the busybox layer once.
    let bytes = std::fs::read(&archive).unwrap();
    let entries = tar_entries(&bytes);
    let member = |name: &str| {
        entries
            .iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in the archive"))
            .2
            .clone()
    };
    let manifest: Value = serde_json::from_slice(&member("manifest.json")).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), 2, "{manifest}");
    assert_eq!(manifest[0]["RepoTags"][0], first.as_str(), "{manifest}");
    let layer_tars = entries
        .iter()
        .filter(|(n, _, _)| n.ends_with("/layer.tar"))
        .count();
    assert_eq!(layer_tars, 3, "the shared layer is written once");
    let repositories: Value = serde_json::from_slice(&member("repositories")).unwrap();
    assert!(
        repositories[first.rsplit_once(':').unwrap().0]["1"].is_string(),
        "{repositories}"
    );
    // The image's owners, not the caller's.
    let owned = member(manifest[0]["Layers"][1].as_str().unwrap());
    let inside = tar_entries(&owned);
    let uid_of = |name: &str| inside.iter().find(|(n, _, _)| n == name).unwrap().1;
    assert_eq!(uid_of("etc/saved"), 0);
    assert_eq!(uid_of("home/app/owned"), 1000);

    // skopeo reads it, and copies it to a registry that rocker pulls from.
    let saved = format!("docker-archive:{}:{first}", archive.display());
    skopeo(&["inspect", &saved]);
    let copied = format!("{}/team/from-archive:1", r.other.host());
    skopeo(&[
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &saved,
        &format!("docker://{copied}"),
    ]);
    assert_eq!(
        pull_and_run_fresh("from-archive", &copied, &["cat", "/etc/saved"]),
        "saved\n"
    );

    // rocker load into a fresh store: both images, runnable.
    let fresh = h.scratch("loaded");
    let out = ok(rocker_in(
        &fresh,
        &["load", "-i", archive.to_str().unwrap()],
    ));
    assert!(out.contains(&format!("Loaded image: {first}")), "{out}");
    assert!(out.contains(&format!("Loaded image: {second}")), "{out}");
    let run = |image: &str, path: &str| {
        ok(rocker_in(
            &fresh,
            &["run", "--rm", "--network", "none", image, "cat", path],
        ))
    };
    assert_eq!(run(&first, "/home/app/owned"), "app's\n");
    assert_eq!(run(&second, "/second"), "2");

    // oci-archive: the store's blobs as they are, so the same manifest.
    let oci = dir.join("one-oci.tar");
    ok(rocker(&[
        "save",
        "--format",
        "oci-archive",
        "-o",
        oci.to_str().unwrap(),
        &second,
    ]));
    let inspected = {
        let output = std::process::Command::new("/usr/bin/skopeo")
            .args(["inspect", &format!("oci-archive:{}", oci.display())])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let stored: Value = serde_json::from_str(&ok(rocker(&["image", "inspect", &second]))).unwrap();
    assert_eq!(inspected["Digest"], stored[0]["Digest"]);
    let fresh_oci = h.scratch("loaded-oci");
    let out = ok(rocker_in(
        &fresh_oci,
        &["load", "-i", oci.to_str().unwrap()],
    ));
    assert!(out.contains(&format!("Loaded image: {second}")), "{out}");
    let reloaded: Value =
        serde_json::from_str(&ok(rocker_in(&fresh_oci, &["image", "inspect", &second]))).unwrap();
    assert_eq!(
        reloaded[0]["Digest"], stored[0]["Digest"],
        "digest kept through the archive"
    );

    // A gzipped archive on standard input, as `docker save x | gzip` makes.
    let gzipped = dir.join("two.tar.gz");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c {} > {}",
            archive.display(),
            gzipped.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    h.give(&gzipped);
    let fresh_stdin = h.scratch("loaded-stdin");
    let mut command = h.rocker_in(&fresh_stdin);
    command
        .arg("load")
        .stdin(std::fs::File::open(&gzipped).unwrap());
    let out = ok(output_within(command, Duration::from_secs(120)));
    assert!(out.contains(&format!("Loaded image: {second}")), "{out}");

    // Saved by id: no name in the archive, none in the store.
    let by_id = dir.join("by-id.tar");
    let id = stored[0]["Id"].as_str().unwrap();
    ok(rocker(&["save", "-o", by_id.to_str().unwrap(), &id[7..19]]));
    let fresh_id = h.scratch("loaded-by-id");
    let out = ok(rocker_in(
        &fresh_id,
        &["load", "-i", by_id.to_str().unwrap()],
    ));
    assert_eq!(out, format!("Loaded image ID: {id}\n"));
    let listed = ok(rocker_in(&fresh_id, &["images"]));
    assert!(
        listed.lines().nth(1).unwrap().starts_with("<none>"),
        "{listed}"
    );
    let run_by_id = ok(rocker_in(
        &fresh_id,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &id[7..19],
            "cat",
            "/second",
        ],
    ));
    assert_eq!(run_by_id, "2");

    // Saved to standard output, into a file.
    let mut command = h.rocker();
    command
        .args(["save", &second])
        .stdout(std::fs::File::create(dir.join("stdout.tar")).unwrap());
    let status = wait_within(&mut command.spawn().unwrap(), Duration::from_secs(120));
    assert!(status.success());
    skopeo(&[
        "inspect",
        &format!("docker-archive:{}", dir.join("stdout.tar").display()),
    ]);
}

#[test]
fn load_reads_what_skopeo_writes() {
    let r = registries();
    let h = harness();
    let image = pulled_busybox(
        "src/skopeo-made:1",
        Layer {
            tar: oci::tar_of(&[("made-by", "skopeo")]),
            compression: Compression::Gzip,
        },
    );
    let dir = h.scratch("skopeo-made");
    let source = format!("docker://{image}");
    let docker_archive = dir.join("docker.tar");
    let oci_archive = dir.join("oci.tar");
    let layout = dir.join("layout");
    for destination in [
        format!("docker-archive:{}:made/docker:1", docker_archive.display()),
        format!("oci-archive:{}:made/oci:1", oci_archive.display()),
        format!("oci:{}:made/layout:1", layout.display()),
    ] {
        skopeo(&[
            "copy",
            "--quiet",
            "--src-tls-verify=false",
            &source,
            &destination,
        ]);
    }
    h.give_tree(&dir);
    for (input, name) in [
        (&docker_archive, "made/docker:1"),
        (&oci_archive, "made/oci:1"),
        (&layout, "made/layout:1"),
    ] {
        let fresh = h.scratch(&format!("load-{}", name.replace(['/', ':'], "-")));
        let out = ok(rocker_in(&fresh, &["load", "-i", input.to_str().unwrap()]));
        assert_eq!(out, format!("Loaded image: {name}\n"));
        let made = ok(rocker_in(
            &fresh,
            &["run", "--rm", "--network", "none", name, "cat", "/made-by"],
        ));
        assert_eq!(made, "skopeo");
    }
    let _ = r;
}

/// A docker-archive around one layer tar, with the config it needs.
fn docker_archive_of(layer: &[u8], layer_member: &str) -> Vec<u8> {
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [oci::sha256(layer)]},
    })
    .to_string();
    let manifest = json!([{
        "Config": "config.json", "RepoTags": ["hostile:1"], "Layers": [layer_member],
    }])
    .to_string();
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, bytes).unwrap();
    };
    add("config.json", config.as_bytes());
    add("manifest.json", manifest.as_bytes());
    add("layer/layer.tar", layer);
    builder.into_inner().unwrap()
}

#[test]
fn hostile_archives_write_nothing_outside_the_store() {
    let h = harness();
    let dir = h.scratch("hostile");
    let target = dir.join("escaped");
    // A layer that climbs out with `..`, built by hand (tar refuses to).
    let mut climbing = tar::Header::new_gnu();
    climbing.set_size(4);
    climbing.set_mode(0o644);
    let name = format!("../../../../../../..{}", target.display());
    climbing.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    climbing.set_cksum();
    let mut layer = climbing.as_bytes().to_vec();
    layer.extend_from_slice(b"evil");
    layer.resize(layer.len() + 508, 0);
    layer.extend_from_slice(&[0; 1024]);

    let archives = [
        (
            "climbing-layer",
            docker_archive_of(&layer, "layer/layer.tar"),
            "climbs out of the layer",
        ),
        // manifest.json naming a path outside the archive
        (
            "outside-member",
            docker_archive_of(&layer, &format!("../../..{}", target.display())),
            "the archive has no",
        ),
    ];
    for (name, bytes, reason) in archives {
        let path = dir.join(format!("{name}.tar"));
        std::fs::write(&path, bytes).unwrap();
        h.give(&path);
        let fresh = h.scratch(&format!("hostile-{name}"));
        let output = rocker_in(&fresh, &["load", "-i", path.to_str().unwrap()]);
        assert_eq!(code(&output), 125, "{name}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(reason),
            "{name}: {}",
            stderr(&output)
        );
        assert!(!target.exists(), "{name} wrote outside the store");
        let listed = ok(rocker_in(&fresh, &["images", "-q"]));
        assert_eq!(listed, "", "{name} left an image");
    }
}

/// A stopped container over an image with owned files, after it added
/// `/added`, changed `/etc/saved` and `/home/app/kept` (app's), and
/// deleted `/home/app/owned`.
fn changed_container(name: &str) -> String {
    changed_container_in(name, None)
}

/// As `changed_container`, with the root made in `mode` (`ROCKER_ROOTFS`).
fn changed_container_in(name: &str, mode: Option<&str>) -> String {
    let image = pulled_busybox(
        &format!("src/{name}:1"),
        Layer {
            tar: owned_layer(),
            compression: Compression::Gzip,
        },
    );
    let mut command = harness().rocker();
    if let Some(mode) = mode {
        command.env("ROCKER_ROOTFS", mode);
    }
    command.args([
        "run",
        "--name",
        name,
        "--network",
        "none",
        &image,
        "sh",
        "-c",
        "echo new > /added && echo changed > /etc/saved && echo more >> /home/app/kept \
         && rm /home/app/owned && mkdir /opaque-not && echo in > /opaque-not/file",
    ]);
    ok(output_within(command, Duration::from_secs(120)));
    image
}

#[test]
fn commit_makes_a_layer_of_what_a_container_added_changed_and_deleted() {
    let r = registries();
    let h = harness();
    changed_container("to-commit");
    let id = ok(rocker(&[
        "commit",
        "-m",
        "my change",
        "-a",
        "tester",
        "-c",
        r#"CMD ["cat", "/added"]"#,
        "-c",
        "ENV COMMITTED=yes",
        "to-commit",
        "committed:1",
    ]));
    assert!(id.starts_with("sha256:"), "{id}");
    let run = |args: &[&str]| {
        let mut all = vec!["run", "--rm", "--network", "none", "committed:1"];
        all.extend_from_slice(args);
        ok(rocker(&all))
    };
    assert_eq!(run(&[]), "new\n", "CMD from --change");
    assert_eq!(
        run(&[
            "sh",
            "-c",
            "cat /etc/saved /home/app/kept; test -e /home/app/owned || echo gone; echo $COMMITTED"
        ]),
        "changed\nkept\nmore\ngone\nyes\n"
    );
    let history = ok(rocker(&["history", "committed:1"]));
    assert!(history.contains("my change"), "{history}");
    let inspected: Value =
        serde_json::from_str(&ok(rocker(&["image", "inspect", "committed:1"]))).unwrap();
    assert_eq!(inspected[0]["Author"], "tester");
    assert_eq!(inspected[0]["Layers"].as_array().unwrap().len(), 3);

    // The new layer, as save writes it: docker's whiteout, the owners.
    let inside = saved_top_layer(&h.scratch("committed"), "committed:1");
    let names = entry_names(&inside);
    let uid_of = |name: &str| inside.iter().find(|(n, _, _)| n == name).unwrap().1;
    assert_eq!(uid_of("added"), 0, "made by the container's root");
    assert_eq!(uid_of("home/app/kept"), 1000, "the image's owner stays");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("tmp/") || *n == "etc/hosts"),
        "{names:?}"
    );

    // It pushes, and another store pulls and runs it.
    let target = format!("{}/team/committed:1", r.other.host());
    ok(rocker(&["push", "committed:1", &target]));
    assert_eq!(pull_and_run_fresh("fresh-committed", &target, &[]), "new\n");
}

#[test]
fn export_and_import_round_trip() {
    let h = harness();
    changed_container("to-export");
    let dir = h.scratch("export");
    let exported = dir.join("export.tar");
    ok(rocker(&[
        "export",
        "-o",
        exported.to_str().unwrap(),
        "to-export",
    ]));
    let bytes = std::fs::read(&exported).unwrap();
    let entries = tar_entries(&bytes);
    let find = |name: &str| entries.iter().find(|(n, _, _)| n == name);
    assert_eq!(find("etc/saved").unwrap().2, b"changed\n");
    assert_eq!(find("home/app/kept").unwrap().1, 1000);
    assert_eq!(find("home/app/kept").unwrap().2, b"kept\nmore\n");
    assert_eq!(find("etc/saved").unwrap().1, 0);
    assert!(find("home/app/owned").is_none(), "deleted in the container");
    assert!(find("bin/busybox").is_some());
    assert!(
        !entries.iter().any(|(n, _, _)| n.contains(".wh.")),
        "no whiteouts in an export"
    );

    let id = ok(rocker(&[
        "import",
        "-c",
        r#"CMD ["cat", "/etc/saved"]"#,
        "-m",
        "from a tarball",
        exported.to_str().unwrap(),
        "imported:1",
    ]));
    assert!(id.starts_with("sha256:"), "{id}");
    let out = ok(rocker(&["run", "--rm", "--network", "none", "imported:1"]));
    assert_eq!(out, "changed\n");
    let history = ok(rocker(&["history", "imported:1"]));
    assert!(history.contains("from a tarball"), "{history}");

    // From standard input, gzipped.
    let gzipped = dir.join("export.tar.gz");
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -c {} > {}",
            exported.display(),
            gzipped.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    h.give(&gzipped);
    let mut command = h.rocker();
    command
        .args(["import", "-", "imported:2"])
        .stdin(std::fs::File::open(&gzipped).unwrap());
    ok(output_within(command, Duration::from_secs(120)));
    let out = ok(rocker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "imported:2",
        "cat",
        "/home/app/kept",
    ]));
    assert_eq!(out, "kept\nmore\n");
    let output = rocker(&["import", "-c", "RUN true", exported.to_str().unwrap()]);
    assert_eq!(code(&output), 125);
    assert!(
        stderr(&output).contains("cannot be a --change"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_killed_push_or_load_leaves_nothing_the_next_one_trips_on() {
    let r = registries();
    let h = harness();
    let big = incompressible(48 << 20);
    let image = pulled_busybox(
        "src/killed:1",
        Layer {
            tar: tar_with_big(&big),
            compression: Compression::Zstd,
        },
    );
    let expected = oci::sha256(&big);
    let interrupted = |args: &[&str], data: Option<&Path>| {
        let mut command = match data {
            Some(data) => h.rocker_in(data),
            None => h.rocker(),
        };
        command.args(args);
        let mut child = spawn_quiet(command);
        std::thread::sleep(Duration::from_millis(300));
        let _ = child.kill();
        let _ = child.wait();
    };

    // Killed while recompressing or uploading; the next push completes.
    let target = format!("{}/team/killed:1", r.other.host());
    interrupted(
        &["push", "--compression-format", "gzip", &image, &target],
        None,
    );
    ok(rocker(&[
        "push",
        "--compression-format",
        "gzip",
        &image,
        &target,
    ]));
    let sum = pull_and_run_fresh("fresh-killed", &target, &["sha256sum", "/big"]);
    assert!(sum.starts_with(&expected[7..]), "{sum}");

    // Killed while loading: no half image, and the next load completes.
    let dir = h.scratch("killed-load");
    let archive = dir.join("big.tar");
    ok(rocker(&["save", "-o", archive.to_str().unwrap(), &image]));
    let fresh = h.scratch("killed-load-store");
    interrupted(&["load", "-i", archive.to_str().unwrap()], Some(&fresh));
    let listed = ok(rocker_in(&fresh, &["images", "--format", "json"]));
    for line in listed.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        // Whatever is indexed is whole: it runs.
        let name = entry["Name"].as_str().unwrap();
        ok(rocker_in(
            &fresh,
            &["run", "--rm", "--network", "none", name, "true"],
        ));
    }
    ok(rocker_in(
        &fresh,
        &["load", "-i", archive.to_str().unwrap()],
    ));
    let sum = ok(rocker_in(
        &fresh,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            &image,
            "sha256sum",
            "/big",
        ],
    ));
    assert!(sum.starts_with(&expected[7..]), "{sum}");
    let leftovers: Vec<_> = std::fs::read_dir(fresh.join("rocker/tmp"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        leftovers.is_empty(),
        "the killed load's temp dirs stay: {leftovers:?}"
    );
}

#[test]
fn commit_of_a_running_container_stops_it_meanwhile_and_lets_it_go_on() {
    let image = pulled_busybox(
        "src/busy:1",
        Layer {
            tar: oci::tar_of(&[("busy", "b")]),
            compression: Compression::Gzip,
        },
    );
    ok(rocker(&[
        "run",
        "-d",
        "--name",
        "busy-writer",
        "--network",
        "none",
        &image,
        // Bounded: a failed test must not leave it spinning for ever.
        "timeout",
        "120",
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i > /c.tmp; mv /c.tmp /counter; done",
    ]));
    let counter = || {
        ok(rocker(&["exec", "busy-writer", "cat", "/counter"]))
            .trim()
            .parse::<u64>()
            .unwrap()
    };
    let before = counter();
    ok(rocker(&["commit", "busy-writer", "busy:committed"]));
    ok(rocker(&[
        "commit",
        "--pause=false",
        "busy-writer",
        "busy:unpaused",
    ]));
    let committed = ok(rocker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busy:committed",
        "cat",
        "/counter",
    ]));
    assert!(
        committed.trim().parse::<u64>().unwrap() >= before,
        "{committed}"
    );
    // Running again after the commit.
    let after = counter();
    std::thread::sleep(Duration::from_millis(200));
    assert!(counter() > after, "the container was not let go on");
    ok(rocker(&["rm", "-f", "busy-writer"]));
}

#[test]
fn commit_of_a_copied_root_finds_its_changes_against_the_image() {
    let h = harness();
    changed_container_in("copied-commit", Some("copy"));
    let inspected: Value =
        serde_json::from_str(&ok(rocker(&["inspect", "copied-commit"]))).unwrap();
    assert!(
        inspected.to_string().to_lowercase().contains("copy"),
        "not a copy-mode container: {inspected}"
    );
    ok(rocker(&["commit", "copied-commit", "copied:1"]));
    let out = ok(rocker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "copied:1",
        "sh",
        "-c",
        "cat /etc/saved /home/app/kept /opaque-not/file; test -e /home/app/owned || echo gone",
    ]));
    assert_eq!(out, "changed\nkept\nmore\nin\ngone\n");

    let inside = saved_top_layer(&h.scratch("copied"), "copied:1");
    let names = entry_names(&inside);
    assert!(
        !names.iter().any(|n| n.starts_with("bin/")),
        "unchanged files are no change: {names:?}"
    );
    let uid_of = |name: &str| inside.iter().find(|(n, _, _)| n == name).unwrap().1;
    assert_eq!(uid_of("home/app/kept"), 1000);
}
