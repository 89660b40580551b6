//! The release binary keeps the start path's functions together
//! (`contrib/build/start-order.txt`, applied by `contrib/build/link.rs`).
//! The list's names carry hashes of the toolchain and of Cargo.lock, so a
//! new compiler or a dependency update silently leaves it matching
//! nothing: this test says so, and how to make it again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// At least this share of the listed functions must be in the binary: a
/// code change drops a few and adds a few; a stale list matches almost
/// none.
const LEAST_FOUND: f64 = 0.8;

const REGENERATE: &str = "cargo build --release --config contrib/build/static.toml && sudo \
     contrib/build/start-order.sh, and commit the new list";

#[test]
fn the_release_binary_lays_out_the_start_path_together() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let binary = release_binary(root);
    let listed: Vec<String> = std::fs::read_to_string(root.join("contrib/build/start-order.txt"))
        .expect("reading contrib/build/start-order.txt")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect();
    assert!(
        listed.len() > 500,
        "the list has only {} names",
        listed.len()
    );
    let symbols = functions(&binary);

    let found: Vec<&(u64, u64)> = listed.iter().filter_map(|name| symbols.get(name)).collect();
    let share = found.len() as f64 / listed.len() as f64;
    assert!(
        share >= LEAST_FOUND,
        "only {} of the {} functions in contrib/build/start-order.txt are in {} (the \
         toolchain or Cargo.lock changed): regenerate it: {REGENERATE}",
        found.len(),
        listed.len(),
        binary.display()
    );

    // Laid out together: the span they cover is about the sum of their
    // sizes (alignment pads each a little); unordered, they spread over
    // megabytes.
    let start = found.iter().map(|(address, _)| *address).min().unwrap();
    let end = found
        .iter()
        .map(|(address, size)| address + size)
        .max()
        .unwrap();
    let total: u64 = found.iter().map(|(_, size)| size).sum();
    assert!(
        end - start <= total + total / 4 + 4096,
        "the {} listed functions ({total} bytes) span {} bytes of {}: the linker did not \
         take the order (see contrib/build/link.rs's warning in the build output)",
        found.len(),
        end - start,
        binary.display()
    );
}

/// The install's build (README.md, "Set up") is static: no dynamic loader
/// at each start (see contrib/build/static.toml).
#[test]
fn the_release_binary_is_static() {
    let binary = release_binary(Path::new(env!("CARGO_MANIFEST_DIR")));
    let headers = binutils("readelf", &["-lW"], &binary);
    assert!(
        headers.contains("LOAD") && !headers.contains("INTERP"),
        "{} asks for a dynamic loader (contrib/build/static.toml was not taken):\n{headers}",
        binary.display()
    );
}

/// Builds the release binary as the install builds it (the list fits only
/// that build) into the target dir these tests were built in, once for
/// both tests.
fn release_binary(root: &Path) -> PathBuf {
    static BUILT: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(binary) = built.as_ref() {
        return binary.clone();
    }
    let test = std::env::current_exe().unwrap();
    // target/debug/deps/start_order-HASH
    let target = test.ancestors().nth(3).unwrap().to_path_buf();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--bin", "rocker"])
        .args(["--config", "contrib/build/static.toml"])
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(root)
        .status()
        .expect("running cargo build --release");
    assert!(status.success(), "cargo build --release failed");
    let binary = target.join(host()).join("release/rocker");
    *built = Some(binary.clone());
    binary
}

/// The host's target tuple, where a build for "host-tuple" lands, from
/// the rustc beside the cargo running these tests.
fn host() -> String {
    let rustc = Path::new(env!("CARGO")).with_file_name("rustc");
    let out = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("running rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("rustc -vV names no host")
        .to_string()
}

/// The binary's functions by name: address and size (`nm -S`).
fn functions(binary: &Path) -> HashMap<String, (u64, u64)> {
    binutils("nm", &["-S", "--defined-only"], binary)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [address, size, kind, name] = fields[..] else {
                return None;
            };
            if !matches!(kind, "t" | "T" | "w" | "W") {
                return None;
            }
            let hex = |text: &str| u64::from_str_radix(text, 16).ok();
            Some((name.to_string(), (hex(address)?, hex(size)?)))
        })
        .collect()
}

/// What a binutils tool (`nm`, `readelf`) prints about `binary`.
fn binutils(tool: &str, args: &[&str], binary: &Path) -> String {
    let out = Command::new(tool)
        .args(args)
        .arg(binary)
        .output()
        .unwrap_or_else(|err| panic!("running {tool}: {err}: install binutils"));
    assert!(out.status.success(), "{tool} {} failed", binary.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}
