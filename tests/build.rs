//! `rocker build`: Containerfiles built as the unprivileged user, over a
//! busybox image from the harness's registry; the images run, are cached
//! step by step, and push with one layer per step that changed files.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use common::oci::{Compression, Layer};
use common::registry::{push_image, shared_registry, TestRegistry};
use common::*;
use serde_json::{json, Value};

fn registry() -> &'static TestRegistry {
    shared_registry()
}

/// The busybox image, in the registry: its name.
fn busybox() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        push_image(
            registry(),
            &harness().base.join("layouts"),
            "busybox:build",
            vec![Layer {
                tar: common::oci::tar_of_dir(&harness().rootfs),
                compression: Compression::Gzip,
            }],
            json!({"Cmd": ["sh"], "Env": ["PATH=/bin"]}),
        )
    })
}

/// A store of its own, and a context dir with these files.
struct Build {
    data: PathBuf,
    context: PathBuf,
}

impl Build {
    fn new(name: &str, files: &[(&str, &str)]) -> Build {
        let h = harness();
        let data = h.scratch(&format!("{name}-data"));
        let context = h.scratch(&format!("{name}-context"));
        for (path, text) in files {
            let path = context.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text.replace("BUSYBOX", busybox())).unwrap();
        }
        h.give_tree(&context);
        Build { data, context }
    }

    fn write(&self, path: &str, text: &str) {
        let path = self.context.join(path);
        std::fs::write(&path, text).unwrap();
        harness().give(&path);
    }

    fn rocker(&self, args: &[&str]) -> Output {
        let mut command = harness().rocker_in(&self.data);
        command.args(args);
        output_within(command, Duration::from_secs(300))
    }

    /// `rocker build ARGS... CONTEXT`, which must succeed: its stdout.
    fn build(&self, args: &[&str]) -> String {
        let context = self.context.to_string_lossy().to_string();
        let mut all = vec!["build"];
        all.extend_from_slice(args);
        all.push(&context);
        ok(self.rocker(&all))
    }

    fn inspect(&self, image: &str) -> Value {
        let list: Value =
            serde_json::from_str(&ok(self.rocker(&["image", "inspect", image]))).unwrap();
        list[0].clone()
    }
}

/// The last line of a build's output: the image id.
fn image_id(out: &str) -> String {
    let id = out.lines().last().unwrap_or_default().to_string();
    assert!(id.starts_with("sha256:") && id.len() == 71, "{out}");
    id
}

fn cached_steps(out: &str) -> usize {
    out.lines()
        .filter(|line| line.starts_with("--> CACHED"))
        .count()
}

const APP: &str = "FROM BUSYBOX\n\
ARG GREETING=hello\n\
ENV WHO=world APP=/srv/app\n\
WORKDIR $APP\n\
COPY site/ www/\n\
COPY --chown=app:app *.txt notes/\n\
RUN echo \"$GREETING $WHO\" > greeting && od -An -N8 -tx8 /dev/urandom > /stamp\n\
USER app\n\
EXPOSE 8080\n\
LABEL org.example.team=core\n\
CMD [\"sh\", \"-c\", \"id -un; pwd; cat greeting; ls www www/css notes; echo $WHO\"]\n";

fn app_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Containerfile", APP),
        ("site/index.html", "<h1>hi</h1>\n"),
        ("site/css/a.css", "a {}\n"),
        ("one.txt", "one\n"),
        ("secret.txt", "never in the image\n"),
        (".dockerignore", "# keep it out\nsecret.txt\n"),
    ]
}

#[test]
fn a_containerfile_builds_an_image_that_runs_with_what_each_instruction_set() {
    let b = Build::new("build-app", &app_files());
    let iidfile = b.data.join("id.txt");
    let out = b.build(&["-t", "app:1", "--iidfile", &iidfile.to_string_lossy()]);
    assert!(out.contains("STEP 1/11: FROM"), "{out}");
    assert!(out.contains("STEP 7/11: RUN echo"), "{out}");
    let id = image_id(&out);
    assert_eq!(std::fs::read_to_string(&iidfile).unwrap(), id);
    let ran = ok(b.rocker(&["run", "--rm", "app:1"]));
    assert_eq!(
        ran,
        "app\n/srv/app\nhello world\nnotes:\none.txt\n\nwww:\ncss\nindex.html\n\nwww/css:\na.css\nworld\n"
    );
    let config = &b.inspect("app:1")["Config"];
    assert_eq!(config["User"], "app");
    assert_eq!(config["WorkingDir"], "/srv/app");
    assert_eq!(config["Labels"]["org.example.team"], "core");
    assert!(config["ExposedPorts"]["8080/tcp"].is_object());
    assert!(config["Env"]
        .as_array()
        .unwrap()
        .contains(&json!("WHO=world")));
    // The ARG is no part of the image.
    assert!(!config["Env"].to_string().contains("GREETING"), "{config}");
    // The build's containers are gone; its steps' images are hidden.
    assert_eq!(ok(b.rocker(&["ps", "-aq"])), "");
    let images = ok(b.rocker(&["images"]));
    assert_eq!(images.lines().count(), 3, "{images}");
    // A repository, a filter, digests.
    ok(b.rocker(&["tag", "app:1", "app:2"]));
    let listed = ok(b.rocker(&["images", "app", "--format", "{{.Tag}}"]));
    assert_eq!(listed.lines().collect::<Vec<_>>(), ["1", "2"], "{listed}");
    assert_eq!(ok(b.rocker(&["images", "app:2", "-q"])).lines().count(), 1);
    let filtered = ok(b.rocker(&[
        "images",
        "--filter",
        "reference=app:*",
        "--format",
        "{{.Tag}}",
    ]));
    assert_eq!(filtered.lines().count(), 2, "{filtered}");
    assert_eq!(ok(b.rocker(&["images", "-f", "dangling=true", "-q"])), "");
    // before= and since= compare creation times with the image named.
    let since = ok(b.rocker(&[
        "images",
        "-f",
        &format!("since={}", busybox()),
        "--format",
        "{{.Tag}}",
    ]));
    assert_eq!(since.lines().collect::<Vec<_>>(), ["1", "2"], "{since}");
    let before = ok(b.rocker(&[
        "images",
        "-f",
        "before=app:1",
        "--format",
        "{{.Repository}}:{{.Tag}}",
    ]));
    assert_eq!(before.lines().count(), 1, "{before}");
    assert!(
        busybox().ends_with(before.trim().rsplit('/').next().unwrap()),
        "{before}"
    );
    let missing = b.rocker(&["images", "-f", "before=no-such-image"]);
    assert_eq!(code(&missing), 1, "{}", stderr(&missing));
    let with_digests = ok(b.rocker(&["images", "--digests", "app:1"]));
    assert!(
        with_digests.contains("DIGEST") && with_digests.contains("sha256:"),
        "{with_digests}"
    );
    // Templates see docker's fields.
    let listed = ok(b.rocker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(
        listed.lines().any(|l| l == "docker.io/library/app:1"),
        "{listed}"
    );
    assert_eq!(
        ok(b.rocker(&["image", "inspect", "-f", "{{.Config.User}}", "app:1"])),
        "app\n"
    );
}

/// A RUN step's container is mounted volatile (no syncs: it is committed
/// and removed), and what it wrote is committed whole all the same.
#[test]
fn a_run_steps_overlay_skips_syncs_and_its_writes_are_committed() {
    let b = Build::new(
        "build-volatile",
        &[(
            "Containerfile",
            "FROM BUSYBOX\nRUN awk '$2 == \"/\" { print $4 }' /proc/mounts > /root-options && seq 1 500 > /numbers && sync\n",
        )],
    );
    let context = b.context.to_string_lossy().to_string();
    let mut command = harness().rocker_in(&b.data);
    command
        .env("ROCKER_ROOTFS", "overlay")
        .args(["build", "-t", "volatile:1", &context]);
    ok(output_within(command, Duration::from_secs(300)));
    let options = ok(b.rocker(&["run", "--rm", "volatile:1", "cat", "/root-options"]));
    assert!(options.contains("volatile"), "{options}");
    let numbers = ok(b.rocker(&["run", "--rm", "volatile:1", "wc", "-l", "/numbers"]));
    assert!(numbers.trim().starts_with("500"), "{numbers}");
}

#[test]
fn a_second_build_runs_nothing_and_a_change_reruns_from_its_step() {
    let b = Build::new("build-cache", &app_files());
    let stamp = |b: &Build| ok(b.rocker(&["run", "--rm", "app:1", "cat", "/stamp"]));
    let first = image_id(&b.build(&["-t", "app:1"]));
    let first_stamp = stamp(&b);

    let again = b.build(&["-t", "app:1"]);
    assert_eq!(image_id(&again), first, "{again}");
    assert_eq!(cached_steps(&again), 3, "COPY, COPY and RUN: {again}");
    assert_eq!(stamp(&b), first_stamp, "the RUN ran again");

    // A copied file changes: its COPY and what follows run again, the
    // COPY before it is reused.
    b.write("one.txt", "one, changed\n");
    let changed = b.build(&["-t", "app:1"]);
    assert_eq!(cached_steps(&changed), 1, "{changed}");
    assert_ne!(stamp(&b), first_stamp);
    assert_eq!(
        ok(b.rocker(&["run", "--rm", "app:1", "cat", "notes/one.txt"])),
        "one, changed\n"
    );

    // A build-arg is seen by RUN, and makes it run again.
    let hi = b.build(&["-q", "--build-arg", "GREETING=hi", "-t", "app:hi"]);
    assert_eq!(hi.lines().count(), 1, "-q prints the id alone: {hi}");
    assert_eq!(
        ok(b.rocker(&["run", "--rm", "app:hi", "cat", "greeting"])),
        "hi world\n"
    );
    // --no-cache runs every step.
    let fresh = b.build(&["--no-cache", "-t", "app:1"]);
    assert_eq!(cached_steps(&fresh), 0, "{fresh}");
    // builder prune leaves the named images whole.
    ok(b.rocker(&["builder", "prune"]));
    assert_eq!(
        ok(b.rocker(&["run", "--rm", "app:1", "cat", "greeting"])),
        "hello world\n"
    );
}

#[test]
fn stages_heredocs_and_a_failing_step() {
    let containerfile = "FROM BUSYBOX AS build\n\
        RUN mkdir /app && echo built > /app/out\n\
        COPY <<EOF /app/notes\n\
        line one\n\
        $HOME stays as written\n\
        EOF\n\
        RUN <<SCRIPT\n\
        echo from-heredoc > /app/h\n\
        echo second line >> /app/h\n\
        SCRIPT\n\
        \n\
        FROM BUSYBOX AS unused\n\
        RUN exit 9\n\
        \n\
        FROM scratch AS final\n\
        COPY --from=build /app /app\n\
        COPY --from=0 /bin/busybox /bin/cat\n\
        \n\
        FROM BUSYBOX AS failing\n\
        RUN echo going to fail; exit 3\n";
    let b = Build::new("build-stages", &[("Containerfile", containerfile)]);
    // The final stage needs build, not unused (whose RUN would fail).
    let out = b.build(&["--target", "final", "-t", "two:1"]);
    assert!(!out.contains("exit 9"), "{out}");
    assert_eq!(
        ok(b.rocker(&[
            "run",
            "--rm",
            "two:1",
            "/bin/cat",
            "/app/out",
            "/app/notes",
            "/app/h"
        ])),
        "built\nline one\n$HOME stays as written\nfrom-heredoc\nsecond line\n"
    );
    // Only the final stage's layers: two COPYs, nothing of busybox's image.
    assert_eq!(b.inspect("two:1")["Layers"].as_array().unwrap().len(), 2);

    let failed = b.rocker(&["build", &b.context.to_string_lossy()]);
    assert_eq!(code(&failed), 1, "{}", stderr(&failed));
    assert!(stdout(&failed).contains("going to fail"));
    assert!(
        stderr(&failed).contains("RUN echo going to fail; exit 3")
            && stderr(&failed).contains("exited with status 3"),
        "{}",
        stderr(&failed)
    );
    assert_eq!(ok(b.rocker(&["ps", "-aq"])), "");
    // A command the step's container cannot start fails the build with 1
    // too, as docker's, not with run's 127.
    b.write(
        "Containerfile",
        &format!("FROM {}\nRUN [\"no-such-command\"]\n", busybox()),
    );
    let failed = b.rocker(&["build", &b.context.to_string_lossy()]);
    assert_eq!(code(&failed), 1, "{}", stderr(&failed));
    assert!(
        stderr(&failed).contains("no-such-command"),
        "{}",
        stderr(&failed)
    );
}

#[test]
fn a_built_image_pushes_with_a_layer_per_step_and_its_owners() {
    let b = Build::new("build-push", &app_files());
    b.build(&["-t", "app:1"]);
    let target = format!("{}/built/app:1", registry().host());
    ok(b.rocker(&["tag", "app:1", &target]));
    ok(b.rocker(&["push", &target]));
    let inspected = std::process::Command::new("/usr/bin/skopeo")
        .args(["inspect", "--tls-verify=false", "--config"])
        .arg(format!("docker://{target}"))
        .output()
        .unwrap();
    assert!(
        inspected.status.success(),
        "{}",
        String::from_utf8_lossy(&inspected.stderr)
    );
    let config: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    // busybox's layer, then COPY, COPY and RUN: the rest changed no file.
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    assert_eq!(diff_ids.len(), 4, "{config}");
    let history: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["created_by"].as_str().unwrap())
        .collect();
    assert!(
        history.contains(&"COPY --chown=app:app *.txt notes/"),
        "{history:?}"
    );
    assert!(
        history.iter().any(|h| h.starts_with("RUN echo")),
        "{history:?}"
    );
    // The steps' history: three with a layer, the rest without.
    let steps = config["history"].as_array().unwrap();
    assert_eq!(
        steps
            .iter()
            .filter(|e| e["empty_layer"] != json!(true))
            .count(),
        3
    );
    assert!(steps.len() >= 9, "{history:?}");
    // The --chown layer says app (1000) owns what it copied.
    let layers = skopeo_layers(&target);
    let owners = tar_owners(&registry().blob_file(&layers[2]));
    assert!(
        owners.contains(&("srv/app/notes/one.txt".to_string(), 1000, 1000)),
        "{owners:?}"
    );
}

fn skopeo_layers(reference: &str) -> Vec<String> {
    let output = std::process::Command::new("/usr/bin/skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(output.status.success());
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    value["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

/// (path, uid, gid) of each entry of a gzip'd layer blob.
fn tar_owners(blob: &Path) -> Vec<(String, u64, u64)> {
    let file = std::fs::File::open(blob).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            let header = entry.header();
            (
                entry
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string(),
                header.uid().unwrap(),
                header.gid().unwrap(),
            )
        })
        .collect()
}

/// `rocker build - < FILE`: the Containerfile from standard input.
fn build_from_stdin(b: &Build, text: &str) -> Output {
    use std::io::Write;
    let mut command = harness().rocker_in(&b.data);
    command
        .args(["build", "-t", "piped:1", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.replace("BUSYBOX", busybox()).as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn mistakes_exit_1_and_name_the_line() {
    let b = Build::new(
        "build-mistakes",
        &[("Containerfile", "FROM BUSYBOX\nRUNN echo typo\n")],
    );
    let out = b.rocker(&["build", &b.context.to_string_lossy()]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("line 2: RUNN echo typo: unknown instruction RUNN"),
        "{}",
        stderr(&out)
    );
    let out = b.rocker(&["build", "/no/such/context"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("is not a directory"),
        "{}",
        stderr(&out)
    );
    // A Containerfile from stdin has no context: RUN works, COPY cannot.
    let out = build_from_stdin(
        &b,
        "FROM BUSYBOX\nRUN echo piped > /p\nCMD [\"cat\", \"/p\"]\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ok(b.rocker(&["run", "--rm", "piped:1"])), "piped\n");
    let out = build_from_stdin(&b, "FROM BUSYBOX\nCOPY x /x\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a build context"));
}

#[test]
fn cache_mounts_last_across_builds_and_stay_out_of_the_layers() {
    let b = Build::new(
        "build-mounts",
        &[(
            "Containerfile",
            "FROM BUSYBOX\n\
             RUN --mount=type=cache,target=/cache --mount=type=tmpfs,target=/scratch \
             echo run >> /cache/runs && wc -l < /cache/runs > /seen && touch /scratch/x && \
             ls /scratch > /scratch-seen\n",
        )],
    );
    b.build(&["-t", "mounts:1"]);
    // What the mounts held is in no layer.
    let script = "cat /seen /scratch-seen; for f in /cache/runs /scratch/x; do \
                  [ -e $f ] && echo $f leaked; done; true";
    let seen = |b: &Build| ok(b.rocker(&["run", "--rm", "mounts:1", "sh", "-c", script]));
    assert_eq!(seen(&b), "1\nx\n");
    // The cache keeps what the last build's RUN left in it.
    b.build(&["--no-cache", "-t", "mounts:1"]);
    assert_eq!(seen(&b).lines().next(), Some("2"));
    // builder prune empties it.
    ok(b.rocker(&["builder", "prune"]));
    b.build(&["--no-cache", "-t", "mounts:1"]);
    assert_eq!(seen(&b).lines().next(), Some("1"));
}

/// A gzip'd tar of these files (mode 0755, owned by 33:33).
fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(vec![]);
    for (name, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o755);
        header.set_uid(33);
        header.set_gid(33);
        builder
            .append_data(&mut header, name, text.as_bytes())
            .unwrap();
    }
    let mut gz = flate2::write::GzEncoder::new(vec![], flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &builder.into_inner().unwrap()).unwrap();
    gz.finish().unwrap()
}

#[test]
fn add_unpacks_a_local_archive_and_copies_plain_files() {
    let b = Build::new(
        "build-add",
        &[
            (
                "Containerfile",
                "FROM BUSYBOX\nADD app.tar.gz /opt/app/\nADD plain.txt /plain.txt\n",
            ),
            ("plain.txt", "plain\n"),
        ],
    );
    let archive = b.context.join("app.tar.gz");
    std::fs::write(
        &archive,
        tar_gz(&[("bin/hello", "#!/bin/sh\necho unpacked\n")]),
    )
    .unwrap();
    harness().give(&archive);
    b.build(&["-t", "added:1"]);
    assert_eq!(
        ok(b.rocker(&[
            "run",
            "--rm",
            "added:1",
            "sh",
            "-c",
            "/opt/app/bin/hello; cat /plain.txt"
        ])),
        "unpacked\nplain\n"
    );
    // An archive and a plain file in one ADD: not yet, and said so.
    b.write(
        "Containerfile",
        &format!("FROM {}\nADD app.tar.gz plain.txt /srv/\n", busybox()),
    );
    let out = b.rocker(&["build", &b.context.to_string_lossy()]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("archives and plain files"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn global_args_shell_healthcheck_and_onbuild_triggers() {
    let base = "ARG BASE=BUSYBOX\n\
        FROM ${BASE}\n\
        SHELL [\"/bin/sh\", \"-ec\"]\n\
        RUN case $- in *e*) echo errexit > /shell;; esac\n\
        HEALTHCHECK --interval=30s --retries=2 CMD test -e /shell\n\
        ONBUILD RUN echo triggered > /onbuild\n\
        STOPSIGNAL SIGQUIT\n";
    let b = Build::new("build-onbuild", &[("Containerfile", base)]);
    b.build(&["-t", "base:1"]);
    let config = &b.inspect("base:1")["Config"];
    assert_eq!(
        config["Healthcheck"]["Test"],
        json!(["CMD-SHELL", "test -e /shell"])
    );
    assert_eq!(config["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(config["Healthcheck"]["Retries"], 2);
    assert_eq!(config["OnBuild"], json!(["RUN echo triggered > /onbuild"]));
    assert_eq!(config["StopSignal"], "SIGQUIT");
    assert_eq!(config["Shell"], json!(["/bin/sh", "-ec"]));
    // The base ran no trigger of its own; an image built on it does, once.
    assert_eq!(
        code(&b.rocker(&["run", "--rm", "base:1", "test", "-e", "/onbuild"])),
        1
    );
    b.write("Containerfile", "FROM base:1\nRUN cat /shell /onbuild\n");
    let child = b.build(&["-t", "child:1"]);
    assert!(child.contains("RUN echo triggered > /onbuild"), "{child}");
    assert_eq!(
        ok(b.rocker(&["run", "--rm", "child:1", "cat", "/onbuild"])),
        "triggered\n"
    );
    assert!(b.inspect("child:1")["Config"]["OnBuild"].is_null());
}

#[test]
fn a_killed_build_leaves_nothing_the_next_one_keeps() {
    let b = Build::new(
        "build-killed",
        &[(
            "Containerfile",
            "FROM BUSYBOX\nRUN echo started; sleep 60\n",
        )],
    );
    // The base first, so that the kill finds the step running.
    ok(b.rocker(&["pull", "-q", busybox()]));
    let mut command = harness().rocker_in(&b.data);
    command
        .args(["build", &b.context.to_string_lossy()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut build = command.spawn().unwrap();
    let start = std::time::Instant::now();
    while ok(b.rocker(&["ps", "-q"])).trim().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the step never ran"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    build.kill().unwrap();
    build.wait().unwrap();
    // Its container died with it (the parent-death signal), and stays
    // listed until the next build sweeps it.
    let start = std::time::Instant::now();
    while !ok(b.rocker(&["ps", "-q"])).trim().is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the step outlived its build"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ok(b.rocker(&["ps", "-aq"])).lines().count(), 1);
    b.write(
        "Containerfile",
        &format!("FROM {}\nENV QUICK=1\n", busybox()),
    );
    b.build(&[]);
    assert_eq!(ok(b.rocker(&["ps", "-aq"])), "");
}

/// Serves `body` over HTTP on loopback, for every request: the URL base.
fn serve(body: &'static [u8]) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body);
        }
    });
    format!("http://{address}")
}

#[test]
fn add_fetches_a_url_and_checks_its_checksum() {
    let base = serve(b"fetched over http\n");
    let digest = common::oci::sha256(b"fetched over http\n");
    let containerfile =
        format!("FROM BUSYBOX\nADD --checksum={digest} {base}/files/tool.txt /opt/\n");
    let b = Build::new("build-url", &[("Containerfile", &containerfile)]);
    b.build(&["-t", "url:1"]);
    assert_eq!(
        ok(b.rocker(&[
            "run",
            "--rm",
            "url:1",
            "sh",
            "-c",
            "cat /opt/tool.txt; stat -c %a /opt/tool.txt"
        ])),
        "fetched over http\n600\n"
    );
    // Fetched again next time, and the same bytes reuse the layer.
    assert_eq!(cached_steps(&b.build(&["-t", "url:1"])), 1);
    b.write(
        "Containerfile",
        &format!(
            "FROM {}\nADD --checksum=sha256:{} {base}/tool.txt /opt/\n",
            busybox(),
            "0".repeat(64)
        ),
    );
    let out = b.rocker(&["build", &b.context.to_string_lossy()]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("not the --checksum"),
        "{}",
        stderr(&out)
    );
}

/// `system df`'s row for `kind`: its TOTAL and SIZE columns.
fn df_row(b: &Build, kind: &str) -> (usize, String) {
    let out = ok(b.rocker(&["system", "df"]));
    let line = out
        .lines()
        .find(|line| line.starts_with(kind))
        .unwrap_or_else(|| panic!("no {kind} row: {out}"));
    let fields: Vec<&str> = line[kind.len()..].split_whitespace().collect();
    (fields[0].parse().unwrap(), fields[2].to_string())
}

#[test]
fn system_df_counts_the_build_cache_and_system_prune_clears_it() {
    let b = Build::new("build-df", &app_files());
    b.build(&["-t", "app:1"]);
    ok(b.rocker(&[
        "run",
        "--name",
        "done",
        "--network",
        "none",
        "app:1",
        "true",
    ]));
    let (images, _) = df_row(&b, "Images");
    assert_eq!(images, 2, "busybox and app:1");
    let (cache, _) = df_row(&b, "Build Cache");
    assert!(cache >= 3, "the steps' images: {cache}");
    assert_eq!(df_row(&b, "Containers").0, 1);
    // Without -f it asks, and a no keeps everything.
    let mut command = harness().rocker_in(&b.data);
    command.args(["system", "prune"]);
    let out = output_within(command, Duration::from_secs(60));
    assert!(stderr(&out).contains("Are you sure"), "{}", stderr(&out));
    assert_eq!(df_row(&b, "Containers").0, 1);
    let out = ok(b.rocker(&["system", "prune", "-f"]));
    assert!(
        out.contains("Deleted Containers:") && out.contains("Total reclaimed space"),
        "{out}"
    );
    assert_eq!(df_row(&b, "Build Cache"), (0, "0B".to_string()));
    assert_eq!(df_row(&b, "Containers").0, 0);
    // The named image is whole, and builds again from nothing cached.
    assert_eq!(
        ok(b.rocker(&["run", "--rm", "app:1", "cat", "greeting"])),
        "hello world\n"
    );
    assert_eq!(cached_steps(&b.build(&["-t", "app:1"])), 0);
    ok(b.rocker(&["system", "prune", "-af"]));
    assert_eq!(df_row(&b, "Images").0, 0);
}

#[test]
fn file_flag_labels_pull_and_the_proxy_args() {
    let b = Build::new(
        "build-flags",
        &[(
            "ci/Dockerfile",
            "FROM BUSYBOX\nARG VERSION=1\nRUN echo \"v$VERSION proxy=$http_proxy\" > /info\n",
        )],
    );
    let file = b
        .context
        .join("ci/Dockerfile")
        .to_string_lossy()
        .to_string();
    let out = b.build(&[
        "-f",
        &file,
        "--pull",
        "--label",
        "org=x",
        "--build-arg",
        "VERSION=2",
        "--build-arg",
        "http_proxy=http://proxy.invalid:3128",
        "-t",
        "flags:1",
    ]);
    assert!(!out.contains("CACHED"), "{out}");
    assert_eq!(
        ok(b.rocker(&["run", "--rm", "flags:1", "cat", "/info"])),
        "v2 proxy=http://proxy.invalid:3128\n"
    );
    let image = b.inspect("flags:1");
    assert_eq!(image["Config"]["Labels"]["org"], "x");
    // The proxy is the build's, not the image's.
    assert!(
        !image["Config"].to_string().contains("proxy.invalid"),
        "{}",
        image["Config"]
    );
}
