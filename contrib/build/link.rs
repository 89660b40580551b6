//! Cargo's build script (see `build` in Cargo.toml): packs rocker's
//! relative relocations (DT_RELR) where the toolchain and the C library
//! both can, and has the linker lay out the functions of the start path
//! together in a release build.
//!
//! Relocations: rocker is a position-independent executable with about
//! 13,000 relative relocations, which the loader reads from a 317 KB table
//! at every start; packed, the table is about 4 KB, and every command starts
//! about 0.3 ms sooner (`rocker ps`: 2.0 ms to 1.75 ms on Debian 12). The
//! packed form needs glibc 2.36 and binutils 2.38 (or lld 15); a binary
//! packed for an older glibc would not start at all, so the flag is used
//! only when a probe program, built with it and with a relocation to pack,
//! runs here.
//!
//! Layout: a command's start ran functions spread over nearly every 64 KB
//! window of the 8 MB of code, a page fault each, and again in the
//! container's child and in the `--rm` sweeper (a fork keeps no page table
//! entries of a file mapping). `contrib/build/start-order.txt` lists them
//! in the order they first run (`contrib/build/start-order.sh` makes it);
//! LLD's `--symbol-ordering-file` puts them first in `.text`, in that
//! order. The names carry hashes of the toolchain, Cargo.lock and the
//! profile, so the list fits only the release build it was made from:
//! `tests/start_order.rs` fails once too few of its names are left. The
//! flag is passed only when the linker rustc uses takes it (LLD, which
//! rustc links with by default on x86_64 Linux, does; GNU ld does not).
//!
//! The install's build is static (contrib/build/static.toml); both
//! flags hold for it too, its probe linked statically to match.
//!
//! A cross build (another target than the host) is left as it is.

use std::path::{Path, PathBuf};
use std::process::Command;

const FLAG: &str = "-Wl,-z,pack-relative-relocs";

/// A pointer in writable data of a PIE: one relative relocation to pack.
const PROBE: &str = "static int value = 7;\nint *pointer = &value;\n\
                     int main(void) { return *pointer == 7 ? 0 : 1; }\n";

/// The list of the start path's functions, from the package's root.
const ORDER: &str = "contrib/build/start-order.txt";

fn main() {
    println!("cargo:rerun-if-changed=contrib/build/link.rs");
    println!("cargo:rerun-if-changed={ORDER}");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let target = var("TARGET");
    if var("HOST") != target || !target.ends_with("-linux-gnu") {
        return;
    }
    let out = PathBuf::from(var("OUT_DIR"));
    // A static build (contrib/build/static.toml) relocates itself at its
    // start, from the same packed table: the probe is linked the same way.
    let static_build = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|feature| feature == "crt-static");
    if probe(&out, static_build) {
        println!("cargo:rustc-link-arg-bins={FLAG}");
    } else {
        println!(
            "cargo:warning=relative relocations stay unpacked (no DT_RELR in this \
             toolchain or C library): rocker works, each start a little slower"
        );
    }
    if var("PROFILE") == "release" {
        let order = PathBuf::from(var("CARGO_MANIFEST_DIR")).join(ORDER);
        let flags = ordering_flags(&order);
        let why_not = if !order.is_file() {
            Some(format!("{ORDER} is missing"))
        } else if !rustc_links_with(&out, &flags) {
            Some("the linker does not take --symbol-ordering-file; LLD does".to_string())
        } else {
            None
        };
        match why_not {
            None => {
                for flag in flags {
                    println!("cargo:rustc-link-arg-bins={flag}");
                }
            }
            Some(why) => println!(
                "cargo:warning=the start path's functions are not laid out together ({why}): \
                 rocker works, each start a little slower"
            ),
        }
    }
}

/// The linker flags that lay out the functions `order` lists first; no
/// warning for a listed name the binary lacks (the list is made from one
/// build and read by all).
fn ordering_flags(order: &Path) -> Vec<String> {
    vec![
        format!("-Wl,--symbol-ordering-file={}", order.display()),
        "-Wl,--no-warn-symbol-ordering".to_string(),
    ]
}

/// Whether rustc, as Cargo calls it for this build (its flags included,
/// which may name another linker), links a program with `flags`.
fn rustc_links_with(out: &Path, flags: &[String]) -> bool {
    let source = out.join("order_probe.rs");
    if std::fs::write(&source, "fn main() {}\n").is_err() {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let encoded = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let mut command = Command::new(rustc);
    command.args(encoded.split('\x1f').filter(|flag| !flag.is_empty()));
    for flag in flags {
        command.arg(format!("-Clink-arg={flag}"));
    }
    command
        .arg("-o")
        .arg(out.join("order_probe"))
        .arg(&source)
        .output()
        .is_ok_and(|out| out.status.success())
}

/// Whether a program linked with the flag (statically, for a static
/// build) builds and runs on this host.
fn probe(out: &Path, static_build: bool) -> bool {
    let source = out.join("relr_probe.c");
    let program = out.join("relr_probe");
    if std::fs::write(&source, PROBE).is_err() {
        return false;
    }
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let built = Command::new(compiler)
        .args(["-fPIE", if static_build { "-static-pie" } else { "-pie" }])
        .args(["-O1", FLAG, "-o"])
        .arg(&program)
        .arg(&source)
        .output()
        .is_ok_and(|out| out.status.success());
    built && Command::new(&program).status().is_ok_and(|s| s.success())
}
