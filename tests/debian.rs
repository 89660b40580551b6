//! A real distribution (debootstrap'd Debian) runs: dynamic glibc binaries,
//! dpkg's database, names from its own /etc/passwd.

mod common;

use std::time::Duration;

use common::oci::{self, Compression, Layer};
use common::registry::{push_image, registries_conf, write_registries_conf, TestRegistry};
use common::*;
use serde_json::json;

fn run_debian(args: &[&str]) -> std::process::Output {
    let h = harness();
    let mut command = h.rocker();
    command
        .args(["run", "--rootfs"])
        .arg(h.debian_rootfs())
        .args(args);
    output_within(command, Duration::from_secs(120))
}

#[test]
fn debian_runs_with_its_package_database() {
    let out = ok(run_debian(&[
        "sh",
        "-c",
        ". /etc/os-release; echo $VERSION_CODENAME; dpkg -l | grep -c '^ii'; \
         apt-get --version | head -1; dpkg-query -W -f='${Status}\\n' bash",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bookworm", "{out}");
    let installed: u32 = lines[1].parse().unwrap();
    assert!(installed > 50, "only {installed} packages listed: {out}");
    assert!(lines[2].starts_with("apt "), "{out}");
    assert_eq!(lines[3], "install ok installed", "{out}");
}

#[test]
fn debian_users_resolve_by_name() {
    let out = ok(run_debian(&[
        "-u",
        "nobody",
        "sh",
        "-c",
        "id -un; id -u; echo $HOME",
    ]));
    assert_eq!(out, "nobody\n65534\n/nonexistent\n");
    let out = ok(run_debian(&["-u", "daemon:adm", "id"]));
    assert_eq!(out, "uid=1(daemon) gid=4(adm) groups=4(adm)\n");
}

static IMAGE: std::sync::OnceLock<(TestRegistry, String)> = std::sync::OnceLock::new();

/// The Debian tree pushed to a real registry as a zstd image, and pulled:
/// its name.
fn debian_image() -> &'static str {
    &IMAGE
        .get_or_init(|| {
            let h = harness();
            let registry = TestRegistry::start(&h.base.join("registry"), None);
            write_registries_conf(&h.base.join("config"), &registries_conf(&[&registry]));
            let layer = Layer {
                tar: oci::tar_of_dir(h.debian_rootfs()),
                compression: Compression::Zstd,
            };
            let image = push_image(
                &registry,
                &h.base.join("layouts"),
                "debian:bookworm",
                vec![layer],
                json!({"Cmd": ["bash"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}),
            );
            let mut pull = h.rocker();
            pull.args(["pull", "-q", &image]);
            ok(output_within(pull, Duration::from_secs(300)));
            (registry, image)
        })
        .1
}

/// `rocker run --rm --pull never OPTIONS DEBIAN sh -c SCRIPT`.
fn run_image_script(options: &[&str], script: &str) -> std::process::Output {
    let mut command = harness().rocker();
    command
        .args(["run", "--rm", "--pull", "never"])
        .args(options)
        .args([debian_image(), "sh", "-c", script]);
    output_within(command, Duration::from_secs(600))
}

/// The image pulled, and run over each rootfs mode.
#[test]
fn debian_as_an_image_runs_dpkg_over_every_rootfs_mode() {
    let h = harness();
    for mode in ["overlay", "fuse-overlayfs", "copy"] {
        let mut command = h.rocker();
        command.env("ROCKER_ROOTFS", mode).args([
            "run",
            "--rm",
            "--pull",
            "never",
            debian_image(),
            "sh",
            "-c",
            "dpkg -l | grep -c '^ii'; dpkg-query -W -f='${Status}\\n' dpkg; \
             apt-get --version | head -1",
        ]);
        let out = ok(output_within(command, Duration::from_secs(300)));
        let lines: Vec<&str> = out.lines().collect();
        let installed: u32 = lines[0].parse().unwrap();
        assert!(installed > 50, "{mode}: only {installed} packages: {out}");
        assert_eq!(lines[1], "install ok installed", "{mode}: {out}");
        assert!(lines[2].starts_with("apt "), "{mode}: {out}");
    }
}

/// The first thing a docker user does: apt-get install, here of packages
/// whose maintainer scripts chown files to system users. The packages come
/// from Debian's mirror, through the default network.
#[test]
fn apt_installs_packages_whose_scripts_chown_to_system_users() {
    require("/usr/bin/slirp4netns", "slirp4netns");
    let h = harness();
    let data = h.scratch("apt-data");
    let mut command = h.rocker_in(&data);
    command.args([
        "run",
        "--name",
        "apt",
        debian_image(),
        "sh",
        "-c",
        "apt-get update -q && \
         apt-get install -y -q --no-install-recommends hello ssl-cert uuid-runtime >/dev/null && \
         hello && stat -c %U:%G /etc/ssl/private && ls /etc/apt/apt.conf.d/00rocker-sandbox",
    ]);
    // This test keeps a store of its own, to look at the container's files.
    let mut pull = h.rocker_in(&data);
    pull.args(["pull", "-q", debian_image()]);
    ok(output_within(pull, Duration::from_secs(300)));
    let out = output_within(command, Duration::from_secs(600));
    let text = ok(out);
    assert!(text.contains("Hello, world!"), "{text}");
    // ssl-cert's chgrp "succeeded": nothing changed, the caller owns it.
    assert!(text.contains("\nroot:root\n"), "{text}");
    // apt's drop-in was seen inside, and is not among the container's writes.
    let id_file = data.join("rocker/containers");
    let upper_drop_ins: Vec<_> = std::fs::read_dir(&id_file)
        .unwrap()
        .flatten()
        .map(|c| c.path().join("upper/etc/apt/apt.conf.d/00rocker-sandbox"))
        .filter(|path| path.exists())
        .collect();
    assert!(upper_drop_ins.is_empty(), "{upper_drop_ins:?}");
    let mut rm = h.rocker_in(&data);
    rm.args(["rm", "apt"]);
    ok(output_within(rm, Duration::from_secs(60)));
}

#[test]
fn users_and_groups_can_be_made_and_switched_to() {
    let out = ok(run_image_script(
        &["--network", "none"],
        "useradd -m app && chown -R app:app /home/app && chgrp app /home/app && \
         su app -c 'echo switched' && getent passwd app | cut -d: -f1,6",
    ));
    assert_eq!(out, "switched\napp:/home/app\n", "{out}");
}

/// Calls the filter refuses, made with perl's syscall() by number.
#[test]
fn keyrings_bpf_and_userfaultfd_are_refused() {
    let number = |name| rocker::runtime::seccomp::profile::syscall_number(name).unwrap();
    let script = format!(
        "for n in {} {} {}; do perl -e 'syscall($ARGV[0], 0, 0, 0, 0); print $!+0, \"\\n\"' $n; done",
        number("keyctl"),
        number("bpf"),
        number("userfaultfd")
    );
    let out = ok(run_image_script(&["--network", "none"], &script));
    assert_eq!(out, "1\n1\n1\n", "EPERM for each: {out}");
    // Unconfined, the kernel answers keyctl itself.
    let keyctl = format!(
        "perl -e 'syscall({}, 0, -3, 0, 0); print $!+0'",
        number("keyctl")
    );
    let out = ok(run_image_script(
        &["--network", "none", "--security-opt", "seccomp=unconfined"],
        &keyctl,
    ));
    assert_ne!(out, "1", "keyctl still refused unconfined");
}

/// A published UDP port, served by perl inside Debian (busybox's nc has no
/// UDP): the host sends datagrams until the container prints one.
#[test]
fn a_published_udp_port_reaches_the_container() {
    require("/usr/bin/slirp4netns", "slirp4netns");
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = harness();
    let mut command = h.rocker();
    command
        .args([
            "run",
            "-p",
            &format!("127.0.0.1:{port}:5353/udp"),
            "--rootfs",
        ])
        .arg(h.debian_rootfs())
        .args([
            "perl",
            "-MIO::Socket::INET",
            "-e",
            "my $s = IO::Socket::INET->new(LocalPort => 5353, Proto => 'udp') or die $!; \
             $s->recv(my $m, 100); print $m;",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut rocker = command.spawn().unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = std::time::Instant::now();
    while rocker.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(30) {
        let _ = sender.send_to(b"ping-over-udp", ("127.0.0.1", port));
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = wait_output(rocker, Duration::from_secs(10));
    assert_eq!(ok(out), "ping-over-udp");
}

/// The caller's session keyring is not the container's: a key the caller
/// holds is not found inside, and a container that adds keys and clears
/// "its" session keyring (unconfined, so the filter does not stop it)
/// leaves the caller's as it was. Both sides use perl's syscall().
#[test]
fn the_callers_session_keyring_stays_out_of_reach() {
    let number = |name| rocker::runtime::seccomp::profile::syscall_number(name).unwrap();
    let (add_key, keyctl) = (number("add_key"), number("keyctl"));
    // keyctl operations: 1 join a session keyring, 7 clear, 10 search; -3
    // is the session keyring.
    // perl passes strings to syscall() as buffers, which must be variables.
    let inside = format!(
        "my ($type, $name, $planted, $x) = ('user', 'rocker-host-key', 'planted', 'x'); \
         my $found = syscall({keyctl}, 10, -3, $type, $name, 0); \
         print $found < 0 ? \"not found\\n\" : \"found\\n\"; \
         syscall({add_key}, $type, $planted, $x, 1, -3); \
         print syscall({keyctl}, 7, -3) == 0 ? \"cleared\\n\" : \"not cleared: $!\\n\";"
    );
    let h = harness();
    let host = format!(
        "my ($type, $name, $secret) = ('user', 'rocker-host-key', 'host-secret'); \
         syscall({keyctl}, 1, 0) >= 0 or die \"join: $!\"; \
         syscall({add_key}, $type, $name, $secret, 11, -3) >= 0 or die \"add_key: $!\"; \
         system(@ARGV) == 0 or die \"rocker failed: $?\"; \
         my $found = syscall({keyctl}, 10, -3, $type, $name, 0); \
         print $found < 0 ? \"host key gone\\n\" : \"host key kept\\n\";"
    );
    let mut command = h.command_as_user("/usr/bin/perl");
    command
        .args(["-e", &host])
        .arg(&h.binary)
        .args(["run", "--rm", "--network", "none"])
        .args(["--security-opt", "seccomp=unconfined", "--rootfs"])
        .arg(h.debian_rootfs())
        .args(["perl", "-e", &inside]);
    let out = ok(output_within(command, Duration::from_secs(120)));
    assert_eq!(out, "not found\ncleared\nhost key kept\n", "{out}");
}

/// What no peer does with a single uid: a Containerfile whose RUN
/// installs packages with apt-get (from Debian's mirror, through the
/// default network), built and run as the unprivileged user, and cached.
#[test]
fn a_containerfile_with_apt_get_install_builds_and_runs() {
    require("/usr/bin/slirp4netns", "slirp4netns");
    let h = harness();
    let context = h.scratch("debian-build");
    std::fs::write(
        context.join("Containerfile"),
        format!(
            "FROM {}\n\
             RUN apt-get update -q && apt-get install -y -q --no-install-recommends hello \
             >/dev/null && rm -rf /var/lib/apt/lists/*\n\
             USER nobody\n\
             CMD [\"hello\", \"-g\", \"built\"]\n",
            debian_image()
        ),
    )
    .unwrap();
    h.give_tree(&context);
    let build = || {
        let mut command = h.rocker();
        command
            .arg("build")
            .arg("-t")
            .arg("hello:built")
            .arg(&context);
        ok(output_within(command, Duration::from_secs(900)))
    };
    let first = build();
    assert!(first.contains("STEP 2/4: RUN apt-get update"), "{first}");
    let mut run = h.rocker();
    run.args(["run", "--rm", "hello:built"]);
    assert_eq!(ok(output_within(run, Duration::from_secs(120))), "built\n");
    // Cached: the second build runs no apt-get.
    let second = build();
    assert!(second.contains("--> CACHED"), "{second}");
    assert_eq!(second.lines().last(), first.lines().last());
    let mut run = h.rocker();
    run.args([
        "run",
        "--rm",
        "hello:built",
        "sh",
        "-c",
        "id -un; dpkg-query -W -f='${Status}' hello",
    ]);
    assert_eq!(
        ok(output_within(run, Duration::from_secs(120))),
        "nobody\ninstall ok installed"
    );
}

/// busybox in the Debian image's registry, for rocker to pull from inside
/// a container: its name.
fn inner_image() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        debian_image();
        let h = harness();
        push_image(
            &IMAGE.get().unwrap().0,
            &h.base.join("layouts"),
            "busybox:nested",
            vec![Layer {
                tar: oci::tar_of_dir(&h.rootfs),
                compression: Compression::Gzip,
            }],
            json!({"Cmd": ["sh"], "Env": ["PATH=/bin"]}),
        )
    })
}

/// rocker inside a rocker container, as in a CI job that is itself a
/// container: the outer one (Debian, with `outer` flags, on the host
/// network so that the registry is in reach) runs `script` with rocker at
/// /opt/rocker, its own directories under `home`, and the registry's
/// registries.conf; `$IMAGE` names busybox there.
fn nested(outer: &[&str], root: &[&str], home: &str, script: &str) -> std::process::Output {
    let h = harness();
    let image = inner_image();
    let mut command = h.rocker();
    command.env("ROCKER_ROOTFS", "overlay").args([
        "run",
        "--rm",
        "--network",
        "host",
        "-v",
        &format!("{}:/opt/rocker:ro", h.binary.display()),
        "-v",
        &format!("{}:/etc/rocker-config:ro", h.base.join("config").display()),
        "--tmpfs",
        "/tmp:exec",
        "-e",
        &format!("HOME={home}"),
        "-e",
        "XDG_RUNTIME_DIR=/tmp/run",
        "-e",
        "XDG_CONFIG_HOME=/etc/rocker-config",
        "-e",
        &format!("IMAGE={image}"),
    ]);
    command.args(outer).args(root).args([
        "sh",
        "-c",
        &format!("mkdir -p {home} /tmp/run; {script}"),
    ]);
    output_within(command, Duration::from_secs(300))
}

#[test]
fn rocker_in_rocker_names_each_blocker_and_runs_once_they_are_lifted() {
    let h = harness();
    let debian = h.debian_rootfs().to_string_lossy().to_string();
    let rootfs = ["--rootfs", debian.as_str()];
    let run = "/opt/rocker run --rm --network none";
    // The outer container's seccomp filter refuses user namespaces: the
    // run and info say which flag lifts it; info knows where it runs.
    let out = nested(
        &[],
        &rootfs,
        "/tmp/home",
        &format!("{run} $IMAGE true; echo status=$?; /opt/rocker info"),
    );
    let (said, errors) = (stdout(&out), stderr(&out));
    assert!(said.contains("status=125"), "{said}\n{errors}");
    assert!(
        errors.contains("--security-opt seccomp=unconfined"),
        "{errors}"
    );
    assert!(said.contains("inside a container   yes: rocker"), "{said}");
    assert!(said.contains("masked /proc         yes"), "{said}");
    // Unconfined, the masked /proc stops a new one, and says so; --pid
    // host runs with the outer /proc, from an image pulled inside.
    let out = nested(
        &["--security-opt", "seccomp=unconfined"],
        &rootfs,
        "/tmp/home",
        &format!("{run} $IMAGE true; echo status=$?; {run} --pid host $IMAGE echo inner-ok"),
    );
    let (said, errors) = (stdout(&out), stderr(&out));
    assert!(said.contains("status=125"), "{said}\n{errors}");
    assert!(
        errors.contains("masked paths") && errors.contains("--pid host"),
        "{errors}"
    );
    assert!(said.ends_with("inner-ok\n"), "{said}\n{errors}");
    assert_eq!(code(&out), 0, "{errors}");
    // Unmasked (podman's flag) or privileged: a container of its own.
    for outer in [
        &[
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "unmask=ALL",
        ][..],
        &["--privileged"][..],
    ] {
        let out = nested(
            outer,
            &rootfs,
            "/tmp/home",
            &format!("{run} $IMAGE echo inner-ok"),
        );
        assert_eq!(stdout(&out), "inner-ok\n", "{outer:?}: {}", stderr(&out));
    }
}

#[test]
fn a_store_on_the_outer_containers_overlay_picks_a_mode_that_works_and_says_why() {
    // The outer container's root is a kernel overlay; the inner store is
    // on it, which kernel overlay refuses as an upper dir.
    let out = nested(
        &["--privileged", "--pull", "never"],
        &[debian_image()],
        "/root",
        "/opt/rocker info --format '{{.rootfs.mode}} {{.nesting.store_on_overlayfs}}'; \
         /opt/rocker info | grep 'overlay in userns'; \
         /opt/rocker run --rm --network none $IMAGE echo inner-ok",
    );
    let (said, errors) = (stdout(&out), stderr(&out));
    let lines: Vec<&str> = said.lines().collect();
    assert_eq!(lines.first(), Some(&"copy true"), "{said}\n{errors}");
    assert!(said.contains("is on overlayfs"), "{said}");
    assert_eq!(lines.last(), Some(&"inner-ok"), "{said}\n{errors}");
    assert!(errors.contains("copying the image"), "{errors}");
}
