//! `--network pasta`: what `tests/network.rs` asks of the default network,
//! asked of pasta (Debian's `passt` package): an interface, routes and a
//! resolver that work; the host's loopback closed unless allowed;
//! published ports (IPv6 too, which pasta binds itself) bound before the
//! command runs, a port in use failing the run; and pasta never outliving
//! its container. Traffic stays on loopback and in the container's own
//! namespace.

mod common;

use std::net::TcpListener;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn require_pasta() {
    require("/usr/bin/pasta", "passt");
}

fn run(args: &[&str]) -> Output {
    require_pasta();
    let mut all = vec!["--network", "pasta"];
    all.extend_from_slice(args);
    harness().run(&all)
}

/// `rocker run --network pasta OPTIONS --rootfs BUSYBOX COMMAND`, left
/// running; this process becomes a subreaper, to see what rocker leaves.
fn spawn(options: &[&str], command: &[&str]) -> Child {
    require_pasta();
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let h = harness();
    let mut rocker = h.rocker();
    rocker
        .args(["run", "--network", "pasta"])
        .args(options)
        .arg("--rootfs")
        .arg(&h.rootfs)
        .args(command);
    spawn_collecting(rocker)
}

/// The child of `parent` that is pasta (Debian's is passt's binary, which
/// runs as `passt.avx2` where the CPU has it).
fn pasta_of(parent: u32) -> u32 {
    let start = Instant::now();
    loop {
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let Some((comm, rest)) = stat.split_once(") ") else {
                continue;
            };
            let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(parent) && (comm.contains("(pasta") || comm.contains("(passt")) {
                return pid;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no pasta under {parent}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn pasta_gives_an_interface_a_default_route_and_a_resolver() {
    let out = ok(run(&[
        "sh",
        "-c",
        "ip -4 -o addr show eth0 | grep -c inet; ip route | grep -c '^default via'; \
         grep nameserver /etc/resolv.conf",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["1", "1"], "{out}");
    assert!(lines.len() > 2, "no nameserver: {out}");
    assert!(
        lines[2..]
            .iter()
            .all(|l| !l.contains(" 127.") && !l.contains(" ::1")),
        "a loopback nameserver inside: {out}"
    );
    let info = ok(harness()
        .rocker()
        .args(["info", "--format", "json"])
        .output()
        .unwrap());
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["pasta"]["ok"], true, "{info}");
}

#[test]
fn host_loopback_opens_only_when_allowed() {
    // Allowed, the gateway is the host's 127.0.0.1.
    let port = host_http_server("from-the-host");
    let fetch = format!(
        "gw=$(ip route | awk '/^default/ {{ print $3 }}'); \
         timeout 10 wget -qO- http://$gw:{port}/; echo status=$?"
    );
    let open = ok(harness().run(&[
        "--network",
        "pasta:allow_host_loopback=true",
        "sh",
        "-c",
        &fetch,
    ]));
    assert!(
        open.contains("from-the-host") && open.contains("status=0"),
        "{open}"
    );
    // By podman's and docker's names for the host too, and host-gateway.
    let by_name = format!(
        "timeout 10 wget -qO- http://host.containers.internal:{port}/; \
         timeout 10 wget -qO- http://host.docker.internal:{port}/; \
         timeout 10 wget -qO- http://mine:{port}/"
    );
    let named = ok(harness().run(&[
        "--network",
        "pasta:allow_host_loopback=true",
        "--add-host",
        "mine:host-gateway",
        "sh",
        "-c",
        &by_name,
    ]));
    assert_eq!(named, "from-the-hostfrom-the-hostfrom-the-host");
    // Closed by default: pasta is told not to map the gateway to the
    // host. (Trying it would send the connection to the host's real
    // gateway, off this machine.)
    let rocker = spawn(&[], &["sleep", "30"]);
    let pasta = pasta_of(rocker.id());
    let cmdline = command_line_of(pasta);
    assert!(cmdline.contains(" --no-map-gw "), "{cmdline}");
    kill(Pid::from_raw(rocker.id() as i32), Signal::SIGKILL).unwrap();
    let _ = wait_output(rocker, Duration::from_secs(20));
    exits_within_seconds(pasta, "pasta");
}

#[test]
fn published_ports_serve_over_ipv4_and_ipv6_and_pasta_ends_with_the_container() {
    let (four, six) = (free_port(), free_port());
    let published = [format!("127.0.0.1:{four}:80"), format!("[::1]:{six}:80")];
    let rocker = spawn(
        &["--init", "-p", &published[0], "-p", &published[1]],
        &[
            "sh",
            "-c",
            "mkdir -p /tmp/www-pasta && echo through-pasta > /tmp/www-pasta/index.html && \
             exec httpd -f -p 80 -h /tmp/www-pasta",
        ],
    );
    let pasta = pasta_of(rocker.id());
    let answer = http_get_until(four, "through-pasta");
    assert!(answer.contains(" 200 OK"), "{answer}");
    let answer = http_get_until_at("::1", six, "through-pasta");
    assert!(answer.contains("through-pasta"), "{answer}");
    kill(Pid::from_raw(rocker.id() as i32), Signal::SIGTERM).unwrap();
    let out = wait_output(rocker, Duration::from_secs(20));
    assert_eq!(code(&out), 143, "{}", stderr(&out));
    exits_within_seconds(pasta, "pasta after its container");
    assert!(
        TcpListener::bind(("127.0.0.1", four)).is_ok(),
        "the port stayed bound"
    );

    // rocker itself SIGKILLed: pasta has a parent-death signal.
    let mut rocker = spawn(&[], &["sleep", "60"]);
    let pasta = pasta_of(rocker.id());
    rocker.kill().unwrap();
    rocker.wait().unwrap();
    exits_within_seconds(pasta, "pasta after rocker was SIGKILLed");
}

#[test]
fn a_port_in_use_fails_the_run_before_the_command() {
    assert_a_port_in_use_fails_the_run(run);
}
