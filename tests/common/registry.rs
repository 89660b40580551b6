//! A real registry for the tests: Debian's `docker-registry` (the
//! reference distribution server) on a free 127.0.0.1 port, filled with
//! `skopeo copy`. No mocks.
#![allow(dead_code)]

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, require};

pub struct TestRegistry {
    pub port: u16,
    pub storage: PathBuf,
    access_log: PathBuf,
    pub credentials: Option<(String, String)>,
    child: Child,
}

impl TestRegistry {
    /// Starts a registry storing under `dir`; with `htpasswd`, it demands
    /// basic auth (the file must hold bcrypt entries).
    pub fn start(dir: &Path, htpasswd: Option<(&Path, &str, &str)>) -> TestRegistry {
        require("/usr/bin/docker-registry", "docker-registry");
        require("/usr/bin/skopeo", "skopeo");
        std::fs::create_dir_all(dir).unwrap();
        // A free port can be taken before the registry binds it: then the
        // registry exits (or another server answers), and a new port is tried.
        for _ in 0..5 {
            if let Some(registry) = TestRegistry::try_start(dir, htpasswd, free_port()) {
                return registry;
            }
        }
        panic!("docker-registry did not start on any of 5 ports");
    }

    fn try_start(
        dir: &Path,
        htpasswd: Option<(&Path, &str, &str)>,
        port: u16,
    ) -> Option<TestRegistry> {
        let storage = dir.join("storage");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
             delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((file, _, _)) = htpasswd {
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: rocker-test\n    path: {}\n",
                file.display()
            ));
        }
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        // The registry goes when this test process does, even if it dies.
        let watchdog = format!(
            "/usr/bin/docker-registry serve '{}' & r=$!; \
             while kill -0 {} 2>/dev/null && kill -0 $r 2>/dev/null; do sleep 1; done; kill $r",
            config_path.display(),
            std::process::id()
        );
        // Its access log (one line per request) goes to stdout.
        let access_log = dir.join("access.log");
        let child = Command::new("/bin/sh")
            .args(["-c", &watchdog])
            .process_group(0)
            .stdout(std::fs::File::create(&access_log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut child = child;
        let start = Instant::now();
        let started = loop {
            if is_a_registry(port) {
                // Answering, and ours: its watchdog still runs.
                break child.try_wait().unwrap().is_none();
            }
            // Its watchdog ends when the registry does (the port was taken).
            if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(30) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let registry = TestRegistry {
            port,
            storage,
            access_log,
            credentials: htpasswd.map(|(_, u, p)| (u.to_string(), p.to_string())),
            child,
        };
        // A registry that did not start is stopped as it drops.
        started.then_some(registry)
    }

    /// A registry under `dir` that demands basic auth as `user`.
    pub fn start_with_login(dir: &Path, user: &str, password: &str) -> TestRegistry {
        require("/usr/bin/htpasswd", "apache2-utils");
        std::fs::create_dir_all(dir).unwrap();
        let htpasswd = dir.join("htpasswd");
        // bcrypt, the only hash the registry takes.
        let output = Command::new("htpasswd")
            .args(["-Bbn", user, password])
            .output()
            .unwrap();
        assert!(output.status.success(), "htpasswd failed");
        std::fs::write(&htpasswd, output.stdout).unwrap();
        TestRegistry::start(dir, Some((&htpasswd, user, password)))
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Pushes the OCI layout `layout` (its `latest`) as `name` (`repo:tag`).
    pub fn push(&self, layout: &Path, name: &str) {
        let mut command = Command::new("/usr/bin/skopeo");
        command.args(["copy", "--quiet", "--all", "--dest-tls-verify=false"]);
        if let Some((user, password)) = &self.credentials {
            command.arg(format!("--dest-creds={user}:{password}"));
        }
        let output = command
            .arg(format!("oci:{}:latest", layout.display()))
            .arg(format!("docker://{}/{name}", self.host()))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "skopeo copy failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The requests rocker has made (by its user agent), as the access
    /// log has them: `PUT /v2/team/app/blobs/uploads/... HTTP/1.1`.
    pub fn rocker_requests(&self) -> Vec<String> {
        std::fs::read_to_string(&self.access_log)
            .unwrap()
            .lines()
            .filter(|line| line.contains("\"rocker/"))
            .filter_map(|line| line.split('"').nth(1).map(str::to_string))
            .collect()
    }

    /// The file holding a blob in the registry's own storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        // The watchdog shell and the registry share a process group.
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

/// Whether what listens on `port` speaks the distribution API.
fn is_a_registry(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = vec![0; 4096];
    let n = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..n]).contains("Docker-Distribution-Api-Version")
}

/// `[[registry]]` entries marking each of `registries` insecure (plain HTTP).
/// One registry per test binary, started on first use and listed as
/// insecure in the test user's registries.conf.
pub fn shared_registry() -> &'static TestRegistry {
    static REGISTRY: std::sync::OnceLock<TestRegistry> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| {
        let h = super::harness();
        let registry = TestRegistry::start(&h.base.join("registry"), None);
        write_registries_conf(&h.base.join("config"), &registries_conf(&[&registry]));
        registry
    })
}

pub fn registries_conf(registries: &[&TestRegistry]) -> String {
    registries
        .iter()
        .map(|r| {
            format!(
                "[[registry]]\nlocation = \"{}\"\ninsecure = true\n\n",
                r.host()
            )
        })
        .collect()
}

/// Writes `text` as `containers/registries.conf` under the config home
/// `config_home` and hands the tree to the user rocker runs as.
pub fn write_registries_conf(config_home: &Path, text: &str) {
    let conf = config_home.join("containers/registries.conf");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(&conf, text).unwrap();
    super::harness().give_tree(config_home);
}

/// Builds a single-platform image of `layers` in a fresh OCI layout under
/// `layouts` and pushes it to `registry` as `name`. Returns the reference.
pub fn push_image(
    registry: &TestRegistry,
    layouts: &Path,
    name: &str,
    layers: Vec<super::oci::Layer>,
    config: serde_json::Value,
) -> String {
    let dir = layouts.join(name.replace([':', '/'], "_"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = super::oci::write_image(&dir, &layers, config, "amd64");
    super::oci::write_index(&dir, vec![manifest]);
    registry.push(&dir, name);
    format!("{}/{name}", registry.host())
}

/// A TCP proxy to `target` on a free 127.0.0.1 port that passes what the
/// client sends at once and what the server answers one byte per `delay`:
/// a registry that trickles, for the tests of timeouts. It runs until the
/// test process ends. Returns its host:port.
pub fn trickling_proxy(target: String, delay: Duration) -> String {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            let (mut client_read, mut server_write) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_read, &mut server_write);
            });
            let (mut server_read, mut client_write) = (server, client);
            std::thread::spawn(move || {
                let mut byte = [0u8; 1];
                while let Ok(1) = server_read.read(&mut byte) {
                    if client_write.write_all(&byte).is_err() {
                        return;
                    }
                    std::thread::sleep(delay);
                }
            });
        }
    });
    host
}
