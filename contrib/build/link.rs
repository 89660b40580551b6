//! Cargo's build script (see `build` in Cargo.toml): packs rocker's
//! relative relocations (DT_RELR) where the toolchain and the C library
//! both can.
//!
//! Why: rocker is a position-independent executable with about 13,000
//! relative relocations, which the loader reads from a 317 KB table at
//! every start; packed, the table is about 4 KB, and every command starts
//! about 0.3 ms sooner (`rocker ps`: 2.0 ms to 1.75 ms on Debian 12). The
//! packed form needs glibc 2.36 and binutils 2.38 (or lld 15); a binary
//! packed for an older glibc would not start at all, so the flag is used
//! only when a probe program, built with it and with a relocation to pack,
//! runs here. A cross build (another target than the host) is left as it
//! is.

use std::path::PathBuf;
use std::process::Command;

const FLAG: &str = "-Wl,-z,pack-relative-relocs";

/// A pointer in writable data of a PIE: one relative relocation to pack.
const PROBE: &str = "static int value = 7;\nint *pointer = &value;\n\
                     int main(void) { return *pointer == 7 ? 0 : 1; }\n";

fn main() {
    println!("cargo:rerun-if-changed=contrib/build/link.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let target = var("TARGET");
    if var("HOST") != target || !target.ends_with("-linux-gnu") {
        return;
    }
    if probe(&PathBuf::from(var("OUT_DIR"))) {
        println!("cargo:rustc-link-arg-bins={FLAG}");
    } else {
        println!(
            "cargo:warning=relative relocations stay unpacked (no DT_RELR in this \
             toolchain or C library): rocker works, each start a little slower"
        );
    }
}

/// Whether a program linked with the flag builds and runs on this host.
fn probe(out: &std::path::Path) -> bool {
    let source = out.join("relr_probe.c");
    let program = out.join("relr_probe");
    if std::fs::write(&source, PROBE).is_err() {
        return false;
    }
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let built = Command::new(compiler)
        .args(["-fPIE", "-pie", "-O1", FLAG, "-o"])
        .arg(&program)
        .arg(&source)
        .output()
        .is_ok_and(|out| out.status.success());
    built && Command::new(&program).status().is_ok_and(|s| s.success())
}
