//! The integration-test harness: the real binary, real namespaces, and never
//! root. When the suite runs as root (CI does), rocker runs as a throwaway
//! unprivileged uid with its own HOME and XDG dirs, from a copy of the
//! binary in a world-readable temp dir (the checkout may sit under /root).
//! Root file systems are built here from Debian's busybox-static.
#![allow(dead_code)]

pub mod oci;
pub mod registry;

use std::io::Read;
use std::os::unix::fs::{chown, symlink, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub struct Harness {
    pub base: PathBuf,
    pub binary: PathBuf,
    pub uid: u32,
    pub gid: u32,
    /// True when the suite runs as root and rocker as the throwaway uid.
    pub switch_user: bool,
    pub rootfs: PathBuf,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

pub fn harness() -> &'static Harness {
    HARNESS.get_or_init(Harness::setup)
}

/// Fails (never skips) when a prerequisite is missing, naming the package.
pub fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install it with `apt-get install {package}`"
    );
}

fn throwaway_uid() -> u32 {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let taken: Vec<u32> = passwd
        .lines()
        .filter_map(|l| l.split(':').nth(2)?.parse().ok())
        .collect();
    (43210..).find(|uid| !taken.contains(uid)).unwrap()
}

/// Removes base dirs left by earlier runs whose process is gone.
fn remove_stale_bases() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(pid) = name
            .strip_prefix("rocker-it-")
            .and_then(|r| r.split('-').next())
        {
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

impl Harness {
    fn setup() -> Harness {
        require("/bin/busybox", "busybox-static");
        require("/usr/bin/setsid", "util-linux");
        remove_stale_bases();
        let switch_user = nix::unistd::geteuid().is_root();
        let (uid, gid) = if switch_user {
            let uid = throwaway_uid();
            (uid, uid)
        } else {
            (
                nix::unistd::getuid().as_raw(),
                nix::unistd::getgid().as_raw(),
            )
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let base = std::env::temp_dir().join(format!("rocker-it-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&base).unwrap();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let harness = Harness {
            binary: base.join("rocker"),
            rootfs: base.join("rootfs"),
            base,
            uid,
            gid,
            switch_user,
        };
        // The copy belongs to the user rocker runs as, as an installed binary
        // in ~/.cargo/bin would: the /proc/PID/exe test then means something.
        std::fs::copy(env!("CARGO_BIN_EXE_rocker"), &harness.binary).unwrap();
        harness.give(&harness.binary);
        for dir in ["home", "run", "config", "data"] {
            let path = harness.base.join(dir);
            std::fs::create_dir_all(&path).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
            harness.give(&path);
        }
        harness.build_busybox_rootfs(&harness.rootfs);
        harness
    }

    /// Hands a path to the user rocker runs as.
    pub fn give(&self, path: &Path) {
        chown(path, Some(self.uid), Some(self.gid)).unwrap();
    }

    pub fn give_tree(&self, path: &Path) {
        let status = Command::new("chown")
            .args(["-R", "-h", &format!("{}:{}", self.uid, self.gid)])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// A fresh directory under the base, owned by the rocker user.
    pub fn scratch(&self, name: &str) -> PathBuf {
        let dir = self.base.join("scratch").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        self.give(&self.base.join("scratch"));
        self.give(&dir);
        dir
    }

    /// A PATH for the rocker user on which `program` is the shell `script`
    /// (a stand-in for a helper such as slirp4netns), then the system's.
    pub fn path_with_script(&self, dir: &str, program: &str, script: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let bin = self.scratch(dir);
        let path = bin.join(program);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        self.give_tree(&bin);
        format!("{}:/usr/bin:/bin", bin.display())
    }

    /// A minimal distribution: static busybox and its applets, passwd and
    /// group with root and an `app` user, empty mount points.
    pub fn build_busybox_rootfs(&self, root: &Path) {
        for dir in [
            "bin", "etc", "proc", "dev", "sys", "tmp", "root", "home/app",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for applet in String::from_utf8(list.stdout).unwrap().lines() {
            if applet != "busybox" {
                let _ = symlink("busybox", root.join("bin").join(applet));
            }
        }
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            root.join("etc/group"),
            "root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
        )
        .unwrap();
        for file in ["hosts", "hostname", "resolv.conf"] {
            std::fs::write(root.join("etc").join(file), "").unwrap();
        }
        std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        self.give_tree(root);
    }

    /// A private copy of the busybox rootfs, for tests that alter it.
    pub fn rootfs_copy(&self, name: &str) -> PathBuf {
        let root = self.base.join("rootfs-copies").join(name);
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        self.build_busybox_rootfs(&root);
        root
    }

    /// `rocker` as the test user, with its own HOME and XDG dirs.
    pub fn rocker(&self) -> Command {
        self.rocker_with_runtime(&self.base.join("run"))
    }

    /// `rocker` as the test user, with a data dir (so a store and
    /// containers) of its own: a test that needs one sees only its own.
    pub fn rocker_in(&self, data: &Path) -> Command {
        let mut command = self.rocker();
        command.env("XDG_DATA_HOME", data);
        command
    }

    pub fn rocker_with_runtime(&self, runtime: &Path) -> Command {
        let mut command = Command::new(&self.binary);
        self.prepare(&mut command, runtime);
        command
    }

    /// Any program, run as the test user with rocker's environment.
    pub fn command_as_user(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        self.prepare(&mut command, &self.base.join("run"));
        command
    }

    fn prepare(&self, command: &mut Command, runtime: &Path) {
        command
            .env_clear()
            .env("HOME", self.base.join("home"))
            .env("XDG_RUNTIME_DIR", runtime)
            .env("XDG_CONFIG_HOME", self.base.join("config"))
            .env("XDG_DATA_HOME", self.base.join("data"))
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .current_dir(&self.base)
            .stdin(Stdio::null());
        if self.switch_user {
            // std drops supplementary groups when root changes uid.
            command.uid(self.uid).gid(self.gid);
        }
    }

    /// `rocker run --rootfs ROOTFS ARGS...` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut command = self.rocker();
        command
            .arg("run")
            .arg("--rootfs")
            .arg(&self.rootfs)
            .args(args);
        output_within(command, Duration::from_secs(60))
    }
}

/// A TCP port on 127.0.0.1 (and UDP, on all addresses) that was free a
/// moment ago, and that this test process has handed out to no other
/// test: tests running in parallel never race for one port (the kernel
/// may hand a released port out again). Whoever binds it later may still
/// lose it to another program; the registries check and retry.
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        // Free for UDP too (`-p PORT:53/udp` takes it that way).
        let udp_free = std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok();
        let mut handed_out = HANDED_OUT.lock().unwrap();
        if udp_free && !handed_out.contains(&port) {
            handed_out.push(port);
            return port;
        }
    }
}

/// Runs a command to completion, killing it and failing the test if it takes
/// longer than `limit` (a hang must not stall the suite).
pub fn output_within(command: Command, limit: Duration) -> Output {
    wait_output(spawn_collecting(command), limit)
}

/// Starts `command` in the background with its stdout and stderr piped,
/// for `wait_output` to collect.
pub fn spawn_collecting(mut command: Command) -> Child {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command.spawn().expect("starting rocker")
}

/// Starts `command` in the background, its stdio on /dev/null.
pub fn spawn_quiet(mut command: Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command.spawn().expect("starting rocker")
}

pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    // Each stream is read on a thread of its own, which sends what it read
    // once the stream ends.
    let (sender, received) = std::sync::mpsc::channel::<(usize, Vec<u8>)>();
    let streams: [Option<Box<dyn Read + Send>>; 2] = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ];
    for (index, stream) in streams.into_iter().enumerate() {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut stream) = stream {
                let _ = stream.read_to_end(&mut buf);
            }
            let _ = sender.send((index, buf));
        });
    }
    let status = wait_within(&mut child, limit);
    // A process the command left behind may hold its output open: give it
    // a moment, then fail, rather than wait for ever.
    let mut outputs = [Vec::new(), Vec::new()];
    let deadline = Instant::now() + Duration::from_secs(15);
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(Instant::now());
        match received.recv_timeout(left) {
            Ok((index, buf)) => outputs[index] = buf,
            Err(_) => panic!(
                "the command ended ({status:?}), but its output stayed open for 15 s: a \
                 process it started still holds it"
            ),
        }
    }
    let [stdout, stderr] = outputs;
    Output {
        status,
        stdout,
        stderr,
    }
}

pub fn wait_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// The exit code, or a failure naming what the process printed.
pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or_else(|| {
        panic!(
            "rocker itself was killed: {:?}\nstderr: {}",
            output.status,
            stderr(output)
        )
    })
}

/// Asserts success and returns stdout.
pub fn ok(output: Output) -> String {
    assert_eq!(
        code(&output),
        0,
        "rocker failed\nstdout: {}\nstderr: {}",
        stdout(&output),
        stderr(&output)
    );
    stdout(&output)
}

/// Asks `127.0.0.1:port` for /index.html over HTTP until the answer
/// contains `expect` (a forward is bound before the server inside
/// listens), within 20 s.
pub fn http_get_until(port: u16, expect: &str) -> String {
    http_get_until_at("127.0.0.1", port, expect)
}

/// The same at `host` (`::1` for IPv6).
pub fn http_get_until_at(host: &str, port: u16, expect: &str) -> String {
    use std::io::Write;
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(20) {
        if let Ok(mut stream) = std::net::TcpStream::connect((host, port)) {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let _ = stream.write_all(b"GET /index.html HTTP/1.0\r\n\r\n");
            last.clear();
            let _ = stream.read_to_string(&mut last);
            if last.contains(expect) {
                return last;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no answer with {expect:?} on {host} port {port}; last: {last:?}");
}

/// A run (`run` takes its arguments after `--rootfs`) publishing a host
/// port something already holds fails with status 125, naming the port,
/// before its command prints anything.
pub fn assert_a_port_in_use_fails_the_run(run: impl Fn(&[&str]) -> Output) {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let published = format!("127.0.0.1:{port}:80");
    let out = run(&["-p", &published, "echo", "should-not-run"]);
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "host port {port}/tcp on 127.0.0.1 is already in use"
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
}

/// An HTTP server on the host's 127.0.0.1 answering every request with
/// `body`; returns its port.
pub fn host_http_server(body: &'static str) -> u16 {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// Waits until `pid` has exited and been reaped: by rocker, or else by
/// this process, its subreaper (which the test made itself). It neither
/// lives on nor stays a zombie.
pub fn exits_within_seconds(pid: u32, what: &str) {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let start = Instant::now();
    // ECHILD: rocker reaped it itself.
    while let Ok(WaitStatus::StillAlive) = waitpid(
        nix::unistd::Pid::from_raw(pid as i32),
        Some(WaitPidFlag::WNOHANG),
    ) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what} is still running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "{what}");
}

/// Pids of live processes whose command line starts with `marker` (so the
/// rocker process that carries the same words in its arguments is not one).
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.starts_with(marker) {
                found.push(pid);
            }
        }
    }
    found
}

/// Waits until a process whose command line starts with `marker` exists.
pub fn wait_for_process(marker: &str, limit: Duration) -> u32 {
    let start = Instant::now();
    loop {
        if let Some(pid) = processes_with(marker).first() {
            return *pid;
        }
        assert!(
            start.elapsed() < limit,
            "no process with {marker:?} appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

static DEBIAN: OnceLock<PathBuf> = OnceLock::new();

impl Harness {
    /// A real distribution: Debian bookworm from debootstrap (minbase), made
    /// once per test binary and handed to the rocker user. debootstrap
    /// needs root; as a normal user, point ROCKER_TEST_DEBIAN_ROOTFS at a
    /// tree made with `sudo debootstrap --variant=minbase bookworm DIR`.
    pub fn debian_rootfs(&self) -> &Path {
        DEBIAN.get_or_init(|| {
            if let Some(dir) = std::env::var_os("ROCKER_TEST_DEBIAN_ROOTFS") {
                return PathBuf::from(dir);
            }
            assert!(
                self.switch_user,
                "building the Debian rootfs needs root: run the suite as root, or set \
                 ROCKER_TEST_DEBIAN_ROOTFS to a tree made with \
                 `sudo debootstrap --variant=minbase bookworm DIR`"
            );
            require("/usr/sbin/debootstrap", "debootstrap");
            let root = self.base.join("debian");
            let output = Command::new("/usr/sbin/debootstrap")
                .args(["--variant=minbase", "bookworm"])
                .arg(&root)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "debootstrap failed (it needs Debian's package mirror):\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            self.give_tree(&root);
            root
        })
    }
}

/// The command line of `pid`, its words joined by spaces. Read while the
/// process execs (pasta running itself again as `passt.avx2`, a command
/// whose exec rocker has just seen begin), it comes back empty: the new
/// program's arguments are set up after its name and after its
/// close-on-exec descriptors are closed, so wait for them.
pub fn command_line_of(pid: u32) -> String {
    let start = Instant::now();
    loop {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_else(|err| panic!("/proc/{pid}/cmdline: {err}"));
        if !cmdline.is_empty() {
            return String::from_utf8_lossy(&cmdline).replace('\0', " ");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "process {pid} shows no command line"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
