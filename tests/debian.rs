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

/// The same tree pushed to a real registry as a zstd image, pulled, and run
/// over each rootfs mode.
#[test]
fn debian_as_an_image_runs_dpkg_over_every_rootfs_mode() {
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
    for mode in ["overlay", "fuse-overlayfs", "copy"] {
        let mut command = h.rocker();
        command.env("ROCKER_ROOTFS", mode).args([
            "run",
            "--rm",
            "--pull",
            "never",
            &image,
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
