//! User-defined networks: `network create|ls|inspect|rm|prune`, containers
//! reaching each other by name and alias on one network and not across
//! two, ports published from a network, addresses handed out to many at
//! once, and the keeper's namespace and helpers gone with the last
//! container, also when a monitor is killed. Each test has its own store;
//! those that watch the keeper come and go have their own runtime dir too,
//! so their keeper is theirs alone. Traffic stays on loopback and in the
//! namespaces rocker makes.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The busybox httpd a container serves `body` with on port 80.
fn serve(body: &str) -> String {
    format!(
        "mkdir -p /srv/www && echo {body} > /srv/www/index.html && exec httpd -f -p 80 -h /srv/www"
    )
}

struct Net {
    data: PathBuf,
    runtime: Option<PathBuf>,
}

impl Net {
    fn new(name: &str) -> Net {
        require("/usr/bin/slirp4netns", "slirp4netns");
        Net {
            data: harness().scratch(name),
            runtime: None,
        }
    }

    /// With a runtime dir of its own, so a keeper of its own.
    fn with_own_keeper(name: &str) -> Net {
        let mut net = Net::new(name);
        let runtime = harness().scratch(&format!("{name}-run"));
        std::fs::set_permissions(&runtime, std::fs::Permissions::from_mode(0o700)).unwrap();
        net.runtime = Some(runtime);
        net
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = match &self.runtime {
            Some(runtime) => harness().rocker_with_runtime(runtime),
            None => harness().rocker(),
        };
        command.env("XDG_DATA_HOME", &self.data).args(args);
        command
    }

    fn rocker(&self, args: &[&str]) -> Output {
        output_within(self.command(args), Duration::from_secs(60))
    }

    /// `run OPTIONS --rootfs BUSYBOX sh -c SCRIPT` to completion.
    fn run(&self, options: &[&str], script: &str) -> Output {
        let rootfs = harness().rootfs.to_string_lossy().to_string();
        let mut args = vec!["run"];
        args.extend_from_slice(options);
        args.extend_from_slice(&["--rootfs", &rootfs, "sh", "-c", script]);
        self.rocker(&args)
    }

    /// `run -d --tmpfs /srv OPTIONS --rootfs BUSYBOX sh -c SCRIPT`.
    fn detach(&self, options: &[&str], script: &str) -> String {
        let mut all = vec!["-d", "--tmpfs", "/srv"];
        all.extend_from_slice(options);
        ok(self.run(&all, script)).trim().to_string()
    }

    fn inspect(&self, format: &str, container: &str) -> String {
        ok(self.rocker(&["inspect", "-f", format, container]))
            .trim()
            .to_string()
    }

    /// The keeper serving this runtime dir: the process whose working
    /// dir is its `networks` dir.
    fn keeper(&self) -> Option<u32> {
        let dir = self.runtime.as_ref().unwrap().join("rocker/networks");
        processes_with("/proc/self/exe network-keeper")
            .into_iter()
            .find(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir))
    }

    /// The slirp4netns processes the keeper `keeper` started that live.
    fn helpers(keeper: u32) -> Vec<u32> {
        processes_with("/usr/bin/slirp4netns")
            .into_iter()
            .filter(|pid| !gone(*pid) && parent_of(*pid) == Some(keeper))
            .collect()
    }
}

/// A wget inside a container, failing within `seconds`. (Not `wget -T`:
/// Debian's static busybox 1.35 crashes with it on a name.)
fn fetch(url: &str, seconds: u32) -> String {
    format!("timeout {seconds} wget -qO- {url}")
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn containers_reach_each_other_by_name_and_alias_and_not_across_networks() {
    let n = Net::new("networks-names");
    let id = ok(n.rocker(&["network", "create", "app"]))
        .trim()
        .to_string();
    assert_eq!(id.len(), 64, "{id}");
    ok(n.rocker(&["network", "create", "other"]));
    n.detach(
        &[
            "--name",
            "web",
            "--network",
            "app",
            "--network-alias",
            "www",
        ],
        &serve("hello-from-web"),
    );
    let by_name = n.run(
        &["--rm", "--network", "app"],
        &format!(
            "for i in $(seq 50); do {} && break; sleep 0.1; done; {}",
            fetch("http://web/", 2),
            fetch("http://www/", 2)
        ),
    );
    assert_eq!(ok(by_name), "hello-from-web\nhello-from-web\n");
    let address = n.inspect("{{.NetworkSettings.Networks.app.IPAddress}}", "web");
    assert!(address.starts_with("10.89.0."), "{address}");
    assert_eq!(
        n.inspect("{{json .NetworkSettings.Networks.app.Aliases}}", "web"),
        "[\"www\"]"
    );
    // From another network: neither the name nor the address.
    let across = n.run(
        &["--rm", "--network", "other"],
        &format!(
            "grep -w web /etc/hosts; {} ; echo exit=$?",
            fetch(&format!("http://{address}/"), 2)
        ),
    );
    let text = stdout(&across) + &stderr(&across);
    assert!(text.contains("exit=1"), "{text}");
    assert!(!text.contains("hello-from-web"), "{text}");
    // network inspect lists the running container with its address.
    let listed = ok(n.rocker(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
        "app",
    ]));
    assert_eq!(listed.trim(), format!("web {address}/24"));
    ok(n.rocker(&["rm", "-f", "web"]));
}

#[test]
fn network_commands_answer_as_dockers_do() {
    let n = Net::new("networks-commands");
    ok(n.rocker(&["network", "create", "--label", "tier=db", "back"]));
    ok(n.rocker(&[
        "network",
        "create",
        "--subnet",
        "10.99.7.0/24",
        "--internal",
        "front",
    ]));
    let again = n.rocker(&["network", "create", "back"]);
    assert_eq!(code(&again), 1, "{}", stderr(&again));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    let names = ok(n.rocker(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]));
    assert_eq!(names, "back bridge\nfront bridge\n");
    let filtered = ok(n.rocker(&["network", "ls", "-q", "--filter", "label=tier=db"]));
    assert_eq!(filtered.trim().len(), 12, "{filtered}");
    let subnet = ok(n.rocker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{.Internal}}",
        "front",
    ]));
    assert_eq!(subnet.trim(), "10.99.7.0/24 10.99.7.2 true");
    // An internal network has no way out: no default route, no resolver.
    let inside = ok(n.run(
        &["--rm", "--network", "front"],
        "ip -4 addr show eth0 | grep -o 'inet [0-9./]*'; ip route; cat /etc/resolv.conf",
    ));
    assert!(inside.starts_with("inet 10.99.7.10/24\n"), "{inside}");
    assert!(!inside.contains("default"), "{inside}");
    assert!(!inside.contains("nameserver"), "{inside}");
    let missing = n.run(&["--rm", "--network", "nosuch"], "true");
    assert_eq!(code(&missing), 125, "{}", stderr(&missing));
    assert!(
        stderr(&missing).contains("rocker network create nosuch"),
        "{}",
        stderr(&missing)
    );
    let alias = n.run(&["--rm", "--network-alias", "x"], "true");
    assert_eq!(code(&alias), 125, "{}", stderr(&alias));
    // In use: rm refuses (exit 1), prune passes it by.
    n.detach(&["--name", "holder", "--network", "back"], "exec sleep 300");
    let busy = n.rocker(&["network", "rm", "back"]);
    assert_eq!(code(&busy), 1, "{}", stderr(&busy));
    assert!(
        stderr(&busy).contains("active endpoints (holder)"),
        "{}",
        stderr(&busy)
    );
    let pruned = ok(n.rocker(&["network", "prune", "-f"]));
    // docker's, blank line included.
    assert_eq!(pruned, "Deleted Networks:\nfront\n\n");
    ok(n.rocker(&["rm", "-f", "holder"]));
    assert_eq!(ok(n.rocker(&["network", "rm", "back"])), "back\n");
    let gone = n.rocker(&["network", "inspect", "back"]);
    assert_eq!(code(&gone), 1, "{}", stderr(&gone));
}

#[test]
fn ports_published_from_a_network_serve_on_the_host() {
    let n = Net::new("networks-ports");
    ok(n.rocker(&["network", "create", "app"]));
    let fixed = free_port();
    let fixed_text = format!("127.0.0.1:{fixed}:80");
    let six = free_port();
    let six_text = format!("[::1]:{six}:80");
    n.detach(
        &[
            "--name",
            "pub",
            "--network",
            "app",
            "-p",
            &fixed_text,
            "-p",
            "80",
            "-p",
            &six_text,
        ],
        &serve("published"),
    );
    let picked = ok(n.rocker(&["port", "pub", "80"]));
    let picked: Vec<u16> = picked
        .lines()
        .filter_map(|line| line.rsplit(':').next()?.parse().ok())
        .filter(|port| *port != fixed && *port != six)
        .collect();
    assert_eq!(picked.len(), 1, "{picked:?}");
    for port in [fixed, picked[0]] {
        let answer = http_get_until(port, "published");
        assert!(answer.contains("published"), "{answer}");
    }
    // And over IPv6, through rocker's own forwarder.
    let answer = http_get_until_at("::1", six, "published");
    assert!(answer.contains("published"), "{answer}");
    ok(n.rocker(&["rm", "-f", "pub"]));
    // The forward went with the container: the port is free again.
    wait_until("the published port freed", Duration::from_secs(10), || {
        std::net::TcpListener::bind(("127.0.0.1", fixed)).is_ok()
    });
}

#[test]
fn ten_containers_joining_at_once_get_ten_addresses() {
    let n = Net::new("networks-ten");
    ok(n.rocker(&["network", "create", "app"]));
    // Each prints its address and stays a while, so all ten are on the
    // network at the same time.
    let children: Vec<_> = (0..10)
        .map(|_| {
            let rootfs = harness().rootfs.to_string_lossy().to_string();
            spawn_collecting(n.command(&[
                "run",
                "--rm",
                "--network",
                "app",
                "--rootfs",
                &rootfs,
                "sh",
                "-c",
                "ip -4 addr show eth0 | grep -o 'inet [0-9.]*'; sleep 3",
            ]))
        })
        .collect();
    let mut addresses: Vec<String> = children
        .into_iter()
        .map(|child| {
            ok(wait_output(child, Duration::from_secs(60)))
                .trim()
                .to_string()
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 10, "{addresses:?}");
}

fn monitor_of(net: &Net, container: &str) -> i32 {
    let init: u32 = net.inspect("{{.State.Pid}}", container).parse().unwrap();
    parent_of(init).unwrap() as i32
}

fn parent_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("PPid:"))?
        .trim()
        .parse()
        .ok()
}

fn gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
}

#[test]
fn the_last_container_out_takes_the_namespace_and_helpers_even_after_a_killed_monitor() {
    let n = Net::with_own_keeper("networks-keeper");
    ok(n.rocker(&["network", "create", "app"]));
    ok(n.rocker(&["network", "create", "spare"]));
    n.detach(&["--name", "first", "--network", "app"], "exec sleep 300");
    n.detach(&["--name", "second", "--network", "app"], "exec sleep 300");
    n.detach(&["--name", "third", "--network", "spare"], "exec sleep 300");
    let keeper = n.keeper().expect("a keeper runs");
    let helpers = Net::helpers(keeper);
    assert_eq!(helpers.len(), 2, "one slirp4netns per network: {helpers:?}");
    let hosts = n.inspect("{{.Id}}", "second");
    let hosts_file = n.data.join("rocker/containers").join(hosts).join("hosts");
    assert!(std::fs::read_to_string(&hosts_file)
        .unwrap()
        .contains("\tfirst "));
    // A monitor killed: its container goes, and so does its name.
    kill(Pid::from_raw(monitor_of(&n, "first")), Signal::SIGKILL).unwrap();
    wait_until(
        "first's name gone from second's hosts",
        Duration::from_secs(10),
        || {
            !std::fs::read_to_string(&hosts_file)
                .unwrap()
                .contains("first")
        },
    );
    ok(n.rocker(&["rm", "-f", "first", "second"]));
    // spare's container still holds the keeper; app is down.
    wait_until("app's slirp4netns gone", Duration::from_secs(10), || {
        helpers.iter().filter(|pid| !gone(**pid)).count() == 1
    });
    assert!(!gone(keeper));
    ok(n.rocker(&["rm", "-f", "third"]));
    let socket = n
        .runtime
        .as_ref()
        .unwrap()
        .join("rocker/networks/keeper.sock");
    wait_until("the keeper gone", Duration::from_secs(10), || gone(keeper));
    wait_until("its slirp4netns gone", Duration::from_secs(10), || {
        helpers.iter().all(|pid| gone(*pid))
    });
    assert!(!socket.exists(), "the keeper's socket stayed");
    // The next run starts afresh.
    let again = ok(n.run(
        &["--rm", "--network", "app"],
        "ip -4 addr show eth0 | grep -c inet",
    ));
    assert_eq!(again.trim(), "1");
    wait_until("the second keeper gone", Duration::from_secs(10), || {
        n.keeper().is_none()
    });
}

#[test]
fn network_connect_joins_a_running_container_and_disconnect_takes_it_off() {
    let n = Net::new("networks-connect");
    ok(n.rocker(&["network", "create", "app"]));
    ok(n.rocker(&["network", "create", "side"]));
    n.detach(
        &["--name", "web", "--network", "app"],
        &serve("hello-connected"),
    );
    n.detach(&["--name", "client", "--network", "side"], "exec sleep 300");
    let exec = |script: &str| n.rocker(&["exec", "client", "sh", "-c", script]);
    let before = exec(&fetch("http://web/", 2));
    assert_ne!(code(&before), 0, "{}", stdout(&before));
    ok(n.rocker(&["network", "connect", "--alias", "c2", "app", "client"]));
    let after = ok(exec(&format!(
        "ip -4 -o addr show eth1 | grep -c 10.89; {}",
        fetch("http://web/", 5)
    )));
    assert_eq!(after, "1\nhello-connected\n");
    // web knows the newcomer by its alias.
    // As a word: the file also holds containers' short ids, hex that may
    // contain "c2" (a flake of about one run in twenty).
    let back = ok(n.rocker(&["exec", "web", "grep", "-cw", "c2", "/etc/hosts"]));
    assert_eq!(back.trim(), "1");
    let networks: serde_json::Value =
        serde_json::from_str(&n.inspect("{{json .NetworkSettings.Networks}}", "client")).unwrap();
    let names: Vec<&String> = networks.as_object().unwrap().keys().collect();
    assert_eq!(names, ["app", "side"]);
    assert!(networks["app"]["IPAddress"]
        .as_str()
        .unwrap()
        .starts_with("10.89."));
    let twice = n.rocker(&["network", "connect", "app", "client"]);
    assert_eq!(code(&twice), 1, "{}", stderr(&twice));
    ok(n.rocker(&["network", "disconnect", "app", "client"]));
    let gone = exec("ip link show eth1; grep -c web /etc/hosts");
    assert_ne!(code(&gone), 0, "{}", stdout(&gone));
    let own = n.rocker(&["network", "disconnect", "side", "client"]);
    assert_ne!(code(&own), 0, "{}", stderr(&own));
    // Connected while stopped: joined at the next start.
    ok(n.rocker(&["stop", "-t", "0", "client"]));
    ok(n.rocker(&["network", "connect", "app", "client"]));
    ok(n.rocker(&["start", "client"]));
    let restarted = ok(exec(&fetch("http://web/", 5)));
    assert_eq!(restarted, "hello-connected\n");
    // A container on the default network cannot join one.
    n.detach(&["--name", "plain"], "exec sleep 300");
    let refused = n.rocker(&["network", "connect", "app", "plain"]);
    assert_eq!(code(&refused), 1, "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("--network NAME"),
        "{}",
        stderr(&refused)
    );
    ok(n.rocker(&["rm", "-f", "web", "client", "plain"]));
}

#[test]
fn a_container_on_another_containers_network_sees_its_interfaces() {
    let n = Net::new("networks-shared");
    ok(n.rocker(&["network", "create", "app"]));
    for (name, network) in [("bridged", "app"), ("plain", "slirp4netns")] {
        n.detach(&["--name", name, "--network", network], &serve(name));
        let theirs = ok(n.rocker(&["exec", name, "ip", "-o", "-4", "addr", "show", "eth0"]));
        let target = format!("container:{name}");
        let ours = ok(n.run(
            &["--rm", "--network", &target],
            &format!("ip -o -4 addr show eth0; {}", fetch("http://127.0.0.1/", 5)),
        ));
        assert_eq!(ours, format!("{theirs}{name}\n"));
        // exec joins the shared network too.
        let joined = format!("{name}-joined");
        n.detach(&["--name", &joined, "--network", &target], "exec sleep 300");
        let exec = ok(n.rocker(&["exec", &joined, "ip", "-o", "-4", "addr", "show", "eth0"]));
        assert_eq!(exec, theirs);
        let mode = n.inspect("{{.HostConfig.NetworkMode}}", &joined);
        let id = n.inspect("{{.Id}}", name);
        assert_eq!(mode, format!("container:{id}"));
        ok(n.rocker(&["rm", "-f", &joined, name]));
    }
    let publish = n.run(&["--rm", "--network", "container:nosuch"], "true");
    assert_eq!(code(&publish), 125, "{}", stderr(&publish));
}

#[test]
fn a_killed_keeper_leaves_nothing_the_next_run_trips_on() {
    let n = Net::with_own_keeper("networks-killed-keeper");
    ok(n.rocker(&["network", "create", "app"]));
    n.detach(
        &["--name", "orphaned", "--network", "app"],
        "exec sleep 300",
    );
    let keeper = n.keeper().expect("a keeper runs");
    let helpers = Net::helpers(keeper);
    kill(Pid::from_raw(keeper as i32), Signal::SIGKILL).unwrap();
    wait_until(
        "the killed keeper's slirp4netns gone",
        Duration::from_secs(10),
        || helpers.iter().all(|pid| gone(*pid)),
    );
    // Its socket is still there, dead: the next run starts a new keeper.
    let again = ok(n.run(
        &["--rm", "--network", "app"],
        "ip -4 -o addr show eth0 | grep -c 10.89.0",
    ));
    assert_eq!(again.trim(), "1");
    ok(n.rocker(&["rm", "-f", "orphaned"]));
    wait_until("the new keeper gone", Duration::from_secs(10), || {
        n.keeper().is_none()
    });
}
