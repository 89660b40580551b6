//! Networking: slirp4netns by default (eth0, routes, resolver), its
//! options, published ports, `none` and `host`, and slirp4netns never
//! outliving its container. Traffic stays on loopback and in the
//! container's own namespace.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn run(args: &[&str]) -> Output {
    require("/usr/bin/slirp4netns", "slirp4netns");
    harness().run(args)
}

/// `rocker run ARGS` (before `--rootfs`) over the busybox tree, left
/// running. This process becomes a subreaper: rocker leaves a dying
/// slirp4netns to whoever inherits it (the kernel's teardown of its tap
/// device takes a while), and the tests see it exit and reap it.
fn spawn(options: &[&str], command: &[&str]) -> Child {
    require("/usr/bin/slirp4netns", "slirp4netns");
    nix::sys::prctl::set_child_subreaper(true).unwrap();
    let h = harness();
    let mut rocker = h.rocker();
    rocker
        .arg("run")
        .args(options)
        .arg("--rootfs")
        .arg(&h.rootfs)
        .args(command);
    spawn_collecting(rocker)
}

/// The children of `parent` whose command is `name`.
fn children_named(parent: u32, name: &str) -> Vec<u32> {
    let mut found = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(parent) && comm.ends_with(&format!("({name}")) {
            found.push(pid);
        }
    }
    found
}

/// Waits until `parent` has a child called `name`, and returns it.
fn wait_for_child(parent: u32, name: &str) -> u32 {
    let start = Instant::now();
    loop {
        if let Some(pid) = children_named(parent, name).first() {
            return *pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no {name} under {parent}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_default_network_is_slirp4netns_with_eth0_and_its_resolver() {
    let out = ok(run(&[
        "sh",
        "-c",
        "ls /sys/class/net; cat /sys/class/net/eth0/mtu; ip -4 -o addr show eth0; \
         ip route; cat /etc/resolv.conf; cat /sys/class/net/lo/operstate; hostname -i",
    ]));
    assert!(out.starts_with("eth0\nlo\n65520\n"), "{out}");
    assert!(out.contains("inet 10.0.2.100/24"), "{out}");
    assert!(out.contains("default via 10.0.2.2 dev eth0"), "{out}");
    assert!(out.contains("nameserver 10.0.2.3\n"), "{out}");
    assert_eq!(out.matches("nameserver").count(), 1, "{out}");
    assert!(out.ends_with("10.0.2.100\n"), "{out}");
    // A container user other than root gets the same network (slirp4netns
    // then runs without its sandbox: see SECURITY.md).
    let out = ok(run(&[
        "-u",
        "1000:1000",
        "ip",
        "-4",
        "-o",
        "addr",
        "show",
        "eth0",
    ]));
    assert!(out.contains("inet 10.0.2.100/24"), "{out}");
}

#[test]
fn the_command_starts_with_its_default_route_in_place() {
    // The command may start before slirp4netns is ready, but never before
    // its interface is configured: read at once, without a shell's start
    // to give slirp4netns time (without the wait, 3 runs in 5 read no
    // route here).
    for _ in 0..5 {
        let table = ok(run(&["cat", "/proc/net/route"]));
        // Destination 0.0.0.0, gateway 10.0.2.2 (in the kernel's order).
        assert!(
            table
                .lines()
                .any(|line| line.starts_with("eth0\t00000000\t0202000A\t")),
            "{table}"
        );
    }
}

#[test]
fn host_loopback_is_closed_by_default_and_opens_when_allowed() {
    let port = host_http_server("from-the-host");
    let fetch = format!("timeout 10 wget -qO- http://10.0.2.2:{port}/; echo status=$?");
    let out = ok(run(&["sh", "-c", &fetch]));
    assert!(!out.contains("from-the-host"), "{out}");
    assert!(!out.contains("status=0"), "{out}");
    let out = ok(run(&[
        "--network",
        "slirp4netns:allow_host_loopback=true",
        "sh",
        "-c",
        &fetch,
    ]));
    assert!(out.contains("from-the-host"), "{out}");
    assert!(out.contains("status=0"), "{out}");
    // By podman's and docker's names for the host too.
    let by_name = format!(
        "timeout 10 wget -qO- http://host.containers.internal:{port}/; \
         timeout 10 wget -qO- http://host.docker.internal:{port}/"
    );
    let out = ok(run(&[
        "--network",
        "slirp4netns:allow_host_loopback=true",
        "sh",
        "-c",
        &by_name,
    ]));
    assert_eq!(out, "from-the-hostfrom-the-host");
}

#[test]
fn the_host_network_reaches_host_loopback_and_none_has_only_lo() {
    let port = host_http_server("hello-host-network");
    let out = ok(run(&[
        "--network",
        "host",
        "sh",
        "-c",
        &format!("timeout 10 wget -qO- http://127.0.0.1:{port}/"),
    ]));
    assert_eq!(out, "hello-host-network");
    let out = ok(run(&[
        "--network",
        "none",
        "sh",
        "-c",
        "ls /sys/class/net; cat /etc/resolv.conf",
    ]));
    assert!(out.starts_with("lo\n"), "{out}");
    assert!(!out.contains("eth0") && !out.contains("10.0.2.3"), "{out}");
}

#[test]
fn slirp4netns_options_apply_and_unknown_ones_are_listed() {
    let out = ok(run(&[
        "--network",
        "slirp4netns:mtu=1500,cidr=10.0.3.0/24",
        "sh",
        "-c",
        "cat /sys/class/net/eth0/mtu; ip -4 -o addr show eth0; ip route; cat /etc/resolv.conf",
    ]));
    assert!(out.starts_with("1500\n"), "{out}");
    assert!(out.contains("inet 10.0.3.100/24"), "{out}");
    assert!(out.contains("default via 10.0.3.2"), "{out}");
    assert!(out.contains("nameserver 10.0.3.3"), "{out}");

    let out = run(&["--network", "slirp4netns:port_handler=rootlesskit", "true"]);
    assert_eq!(code(&out), 125);
    for known in ["allow_host_loopback", "mtu", "enable_ipv6", "cidr"] {
        assert!(stderr(&out).contains(known), "{}", stderr(&out));
    }
}

#[test]
fn bad_network_flags_fail_before_any_pull() {
    // Nothing listens on port 1: had rocker tried to pull, it would say so.
    for flags in [["--network", "bridge"], ["-p", "8080:80/sctp"]] {
        let out = harness()
            .rocker()
            .arg("run")
            .args(flags)
            .args(["127.0.0.1:1/never/pulled:1", "true"])
            .output()
            .unwrap();
        assert_eq!(code(&out), 125, "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(flags[1]) && !err.contains("127.0.0.1:1"),
            "{err}"
        );
    }
}

#[test]
fn a_published_tcp_port_serves_from_the_container() {
    let port = free_port();
    let published = format!("{port}:80");
    let rocker = spawn(
        &["--init", "-p", &published],
        &[
            "sh",
            "-c",
            "mkdir -p /tmp/www && echo from-the-container > /tmp/www/index.html && \
             exec httpd -f -p 80 -h /tmp/www",
        ],
    );
    let slirp = wait_for_child(rocker.id(), "slirp4netns");
    let answer = http_get_until(port, "from-the-container");
    assert!(answer.contains(" 200 OK"), "{answer}");
    kill(Pid::from_raw(rocker.id() as i32), Signal::SIGTERM).unwrap();
    let out = wait_output(rocker, Duration::from_secs(20));
    assert_eq!(code(&out), 143, "{}", stderr(&out));
    exits_within_seconds(slirp, "slirp4netns");
}

#[test]
fn an_ipv6_host_address_publishes_over_ipv6_through_rockers_forwarder() {
    let port = free_port();
    let published = format!("[::1]:{port}:80");
    let rocker = spawn(
        &["--init", "-p", &published],
        &[
            "sh",
            "-c",
            "mkdir -p /tmp/www6 && echo over-ipv6 > /tmp/www6/index.html && \
             exec httpd -f -p 80 -h /tmp/www6",
        ],
    );
    let start = Instant::now();
    let mut last = String::new();
    while !last.contains("over-ipv6") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no answer over [::1]:{port}: {last:?}"
        );
        if let Ok(mut stream) = TcpStream::connect(("::1", port)) {
            let _ = stream.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
            last.clear();
            let _ = stream.read_to_string(&mut last);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let forwarder = wait_for_process("/proc/self/exe port-forwarder", Duration::from_secs(5));
    kill(Pid::from_raw(rocker.id() as i32), Signal::SIGTERM).unwrap();
    let out = wait_output(rocker, Duration::from_secs(20));
    assert_eq!(code(&out), 143, "{}", stderr(&out));
    exits_within_seconds(forwarder, "the port forwarder");
    assert!(
        TcpListener::bind(("::1", port)).is_ok(),
        "[::1]:{port} stayed bound"
    );
}

#[test]
fn free_host_ports_for_p_without_one_and_for_publish_all() {
    require("/usr/bin/slirp4netns", "slirp4netns");
    let h = harness();
    let data = h.scratch("network-free-ports");
    let rocker = |args: &[&str]| {
        let mut command = h.rocker_in(&data);
        command.args(args);
        output_within(command, Duration::from_secs(60))
    };
    let rootfs = h.rootfs.to_string_lossy().to_string();
    // -p 80 picks a port; -P takes what --expose names and is not
    // published yet.
    ok(rocker(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "80",
        "--expose",
        "8080",
        "-P",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "mkdir -p /tmp/a /tmp/b && echo eighty > /tmp/a/index.html && \
         echo eighty-eighty > /tmp/b/index.html && httpd -p 80 -h /tmp/a && \
         exec httpd -f -p 8080 -h /tmp/b",
    ]));
    let listed = ok(rocker(&["port", "web"]));
    let host_port = |container: &str| -> u16 {
        let line = listed
            .lines()
            .find(|l| l.starts_with(&format!("{container}/tcp -> 0.0.0.0:")))
            .unwrap_or_else(|| panic!("no {container} in {listed}"));
        line.rsplit(':').next().unwrap().parse().unwrap()
    };
    let (eighty, eighty_eighty) = (host_port("80"), host_port("8080"));
    assert_ne!(eighty, eighty_eighty);
    assert!(http_get_until(eighty, "eighty").contains("200 OK"));
    assert!(http_get_until(eighty_eighty, "eighty-eighty").contains("200 OK"));
    assert_eq!(
        ok(rocker(&["port", "web", "8080"])).trim(),
        format!("0.0.0.0:{eighty_eighty}")
    );
    ok(rocker(&["rm", "-f", "web"]));
}

#[test]
fn a_port_in_use_fails_the_run_before_the_command() {
    assert_a_port_in_use_fails_the_run(run);

    let out = run(&["--network", "none", "-p", "8080:80", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("--network none"), "{}", stderr(&out));
}

#[test]
fn slirp4netns_never_outlives_its_container() {
    // The container's own end.
    let rocker = spawn(&[], &["sleep", "1"]);
    let slirp = wait_for_child(rocker.id(), "slirp4netns");
    let out = wait_output(rocker, Duration::from_secs(20));
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    exits_within_seconds(slirp, "slirp4netns after a normal exit");

    // The container killed from outside.
    let rocker = spawn(&[], &["sleep", "60"]);
    let slirp = wait_for_child(rocker.id(), "slirp4netns");
    let container = wait_for_child(rocker.id(), "sleep");
    kill(Pid::from_raw(container as i32), Signal::SIGKILL).unwrap();
    let out = wait_output(rocker, Duration::from_secs(20));
    assert_eq!(code(&out), 137, "{}", stderr(&out));
    exits_within_seconds(slirp, "slirp4netns after the container was killed");

    // rocker itself SIGKILLed: its children come to this process.
    let mut rocker = spawn(&[], &["sleep", "60"]);
    let slirp = wait_for_child(rocker.id(), "slirp4netns");
    let container = wait_for_child(rocker.id(), "sleep");
    rocker.kill().unwrap();
    rocker.wait().unwrap();
    exits_within_seconds(slirp, "slirp4netns after rocker was SIGKILLed");
    exits_within_seconds(container, "the container after rocker was SIGKILLed");
}

/// The namespace of `kind` process `pid` is in, as its /proc link reads.
fn namespace_of(pid: &str, kind: &str) -> String {
    let link = format!("/proc/{pid}/ns/{kind}");
    std::fs::read_link(&link)
        .unwrap_or_else(|err| panic!("{link}: {err}"))
        .display()
        .to_string()
}

/// A line of /proc/PID/status once slirp4netns has installed its filter
/// (it does so last, just before it says it is ready).
fn filtered_status(pid: u32) -> String {
    let start = Instant::now();
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        if status.contains("Seccomp:\t2\n") {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "slirp4netns never installed its syscall filter:\n{status}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn slirp4netns_is_confined_and_joins_the_containers_user_namespace_only_for_its_sandbox() {
    // Root in the container: slirp4netns is started in the container's
    // user namespace, and its sandbox (a mount namespace of its own) keeps
    // no capability but binding low ports.
    let mut rocker = spawn(&[], &["sleep", "60"]);
    let slirp = wait_for_child(rocker.id(), "slirp4netns");
    let container = wait_for_child(rocker.id(), "sleep");
    let status = filtered_status(slirp);
    let (slirp, container) = (slirp.to_string(), container.to_string());
    assert_eq!(
        namespace_of(&slirp, "user"),
        namespace_of(&container, "user")
    );
    let mount = namespace_of(&slirp, "mnt");
    assert_ne!(mount, namespace_of("self", "mnt"));
    assert_ne!(mount, namespace_of(&container, "mnt"));
    assert!(status.contains("CapEff:\t0000000000000400\n"), "{status}");
    rocker.kill().unwrap();
    rocker.wait().unwrap();

    // Another container user: no uid 0 to build the sandbox with, so
    // slirp4netns stays where rocker is, holding nothing over the
    // container, and only its filter confines it.
    let mut rocker = spawn(&["-u", "1000:1000"], &["sleep", "60"]);
    let slirp = wait_for_child(rocker.id(), "slirp4netns");
    let status = filtered_status(slirp);
    let slirp = slirp.to_string();
    assert_eq!(namespace_of(&slirp, "user"), namespace_of("self", "user"));
    assert_eq!(namespace_of(&slirp, "mnt"), namespace_of("self", "mnt"));
    assert!(status.contains("CapEff:\t0000000000000000\n"), "{status}");
    rocker.kill().unwrap();
    rocker.wait().unwrap();
}

#[test]
fn a_slirp4netns_failing_after_it_configured_the_interface_ends_the_container() {
    let h = harness();
    require("/usr/bin/slirp4netns", "slirp4netns");
    // The real one, but its API socket cannot be made: it configures the
    // interface (the command may start), then gives up.
    let path = h.path_with_script(
        "failing-slirp-bin",
        "slirp4netns",
        "#!/bin/sh\nexec /usr/bin/slirp4netns \"$@\" --api-socket=/nonexistent/api.sock\n",
    );
    let data = h.scratch("failing-slirp-data");
    let mut command = h.rocker_in(&data);
    command
        .env("PATH", path)
        .args(["run", "--rootfs"])
        .arg(&h.rootfs)
        .args(["sleep", "1034"]);
    let start = Instant::now();
    let out = output_within(command, Duration::from_secs(60));
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(stderr(&out).contains("slirp4netns"), "{}", stderr(&out));
    assert!(stderr(&out).contains("api_bindlisten"), "{}", stderr(&out));
    // The container went with it. If its command had started (it need not
    // wait for the sandbox) it stays, exited with rocker's status; if
    // slirp4netns failed first, it never started and left nothing.
    assert!(processes_with("sleep 1034").is_empty());
    let mut ps = h.rocker_in(&data);
    ps.args(["ps", "-a", "--format", "{{.Status}}"]);
    let status = ok(output_within(ps, Duration::from_secs(30)));
    assert!(
        status.is_empty() || status.starts_with("Exited (125)"),
        "{status}"
    );
}
