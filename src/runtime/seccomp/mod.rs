//! The syscall filter of a container: rocker's built-in profile (`builtin`,
//! docker's default semantics), or none, or a profile in docker's JSON
//! format (`profile`), with root emulation (`runtime::root_emulation`) in
//! front when the container user is root. It is one BPF program (`bpf`),
//! compiled before the container is cloned, so the container does no work
//! for it, and installed last before exec, by `run`'s container and by
//! every `exec`.

pub mod bpf;
mod builtin;
pub mod profile;

use std::path::Path;

use anyhow::{bail, Context, Result};
use caps::CapsHashSet;

use super::root_emulation;
pub use crate::spec::SeccompPolicy as Policy;

/// A compiled filter, ready to install (and kept with a container that may
/// start again: a profile is read once, when the container is made).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Program(Vec<bpf::Instruction>);

/// The filter for a container holding `caps`, under `policy`, with root
/// emulation in front when `emulate_root`; None when it gets none at all.
pub fn program(policy: &Policy, caps: &CapsHashSet, emulate_root: bool) -> Result<Option<Program>> {
    let kernel = crate::host::probe::kernel_release()
        .ok()
        .and_then(|release| profile::kernel_version(&release).ok())
        .unwrap_or((0, 0));
    let target = profile::Target { caps, kernel };
    let mut filter = match policy {
        Policy::Builtin => builtin::profile().resolve(&target),
        Policy::Profile(path) => load(path)?.resolve(&target),
        Policy::Unconfined if emulate_root => bpf::Filter {
            default: bpf::Action::Allow,
            rules: vec![],
        },
        Policy::Unconfined => return Ok(None),
    };
    if emulate_root {
        root_emulation::apply(&mut filter);
    }
    Ok(Some(Program(bpf::compile(&filter)?)))
}

/// Reads and checks the profile at `path`.
pub fn load(path: &Path) -> Result<profile::Profile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the seccomp profile {}", path.display()))?;
    profile::parse_json(&text).with_context(|| format!("the seccomp profile {}", path.display()))
}

impl Program {
    /// Installs the filter on this process; no_new_privs must be set.
    pub fn install(&self) -> Result<()> {
        let steps: Vec<(u16, u8, u8, u32)> =
            self.0.iter().map(|i| (i.code, i.jt, i.jf, i.k)).collect();
        crate::sys::install_seccomp_filter(&steps).context("installing the seccomp filter")
    }

    /// The program as 8 bytes an instruction (`struct sock_filter`'s
    /// layout, little-endian), for `exec` to install the same filter.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.0.len() * 8);
        for instruction in &self.0 {
            bytes.extend_from_slice(&instruction.code.to_le_bytes());
            bytes.push(instruction.jt);
            bytes.push(instruction.jf);
            bytes.extend_from_slice(&instruction.k.to_le_bytes());
        }
        bytes
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Program> {
        if bytes.is_empty() || bytes.len() % 8 != 0 {
            bail!("a seccomp program of {} bytes", bytes.len());
        }
        let program = bytes
            .chunks_exact(8)
            .map(|b| bpf::Instruction {
                code: u16::from_le_bytes([b[0], b[1]]),
                jt: b[2],
                jf: b[3],
                k: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            })
            .collect();
        Ok(Program(program))
    }

    /// What the filter answers for syscall `name` with `args` (for tests
    /// and checks; nothing is installed).
    pub fn answer(&self, name: &str, args: [u64; 6]) -> Result<bpf::Action> {
        let nr = profile::syscall_number(name)
            .with_context(|| format!("{name} is no syscall of this architecture"))?;
        let data = bpf::SyscallData {
            nr,
            arch: bpf::NATIVE_ARCH,
            args,
        };
        Ok(bpf::action_of(bpf::run(&self.0, &data)?))
    }
}

#[cfg(test)]
mod tests {
    use super::bpf::Action;
    use super::*;
    use crate::runtime::capabilities::DEFAULT_CAPABILITIES;

    const EPERM: Action = Action::Errno(libc::EPERM as u16);

    fn default_caps() -> CapsHashSet {
        DEFAULT_CAPABILITIES.iter().copied().collect()
    }

    fn docker_default() -> profile::Profile {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/seccomp/docker-default.json");
        profile::parse_json(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// Every syscall of this architecture, with arguments that exercise the
    /// argument checks of the profiles.
    fn probes() -> Vec<(&'static str, [u64; 6])> {
        let mut probes = vec![];
        let mut sysno = syscalls::Sysno::first();
        loop {
            let name = sysno.name();
            for arg0 in [
                0,
                1,
                8,
                16,
                38,
                39,
                40,
                41,
                0x20000,
                0xffff_ffff,
                libc::CLONE_NEWUSER as u64,
            ] {
                probes.push((name, [arg0, 0, 0, 0, 0, 0]));
            }
            match sysno.next() {
                Some(next) => sysno = next,
                None => break,
            }
        }
        probes
    }

    #[test]
    fn the_builtin_filter_answers_as_dockers_default_profile() {
        let docker = docker_default();
        for caps in [
            default_caps(),
            caps::all(),
            [caps::Capability::CAP_SYS_ADMIN].into_iter().collect(),
        ] {
            let target = profile::Target {
                caps: &caps,
                kernel: (6, 1),
            };
            let ours = Program(bpf::compile(&builtin::profile().resolve(&target)).unwrap());
            let theirs = Program(bpf::compile(&docker.resolve(&target)).unwrap());
            for (name, args) in probes() {
                assert_eq!(
                    ours.answer(name, args).unwrap(),
                    theirs.answer(name, args).unwrap(),
                    "{name}({:#x}) with {} capabilities",
                    args[0],
                    caps.len()
                );
            }
        }
    }

    #[test]
    fn compiled_programs_answer_as_their_rules_read() {
        let caps = default_caps();
        let target = profile::Target {
            caps: &caps,
            kernel: (6, 1),
        };
        for filter in [
            docker_default().resolve(&target),
            builtin::profile().resolve(&target),
        ] {
            let program = Program(bpf::compile(&filter).unwrap());
            for (name, args) in probes() {
                let data = bpf::SyscallData {
                    nr: profile::syscall_number(name).unwrap(),
                    arch: bpf::NATIVE_ARCH,
                    args,
                };
                assert_eq!(
                    program.answer(name, args).unwrap(),
                    bpf::answer_by_rules(&filter, &data),
                    "{name}({:#x})",
                    args[0]
                );
            }
        }
    }

    #[test]
    fn the_builtin_program_stays_small() {
        // The kernel converts and compiles it in every container's start:
        // 712 instructions as a tree of syscalls, 0.2-0.26 ms to install.
        for emulate_root in [false, true] {
            let program = program(&Policy::Builtin, &default_caps(), emulate_root)
                .unwrap()
                .unwrap();
            assert!(program.0.len() < 400, "{} instructions", program.0.len());
        }
    }

    #[test]
    fn the_default_refuses_what_a_container_has_no_business_with() {
        let program = program(&Policy::Builtin, &default_caps(), false)
            .unwrap()
            .unwrap();
        for name in [
            "keyctl",
            "add_key",
            "request_key",
            "bpf",
            "userfaultfd",
            "kexec_load",
            "perf_event_open",
            "io_uring_setup",
            "open_by_handle_at",
            "mount",
            "unshare",
            "setns",
            "init_module",
            "ptrace_not_a_syscall",
        ] {
            if profile::syscall_number(name).is_none() {
                continue;
            }
            assert_eq!(program.answer(name, [0; 6]).unwrap(), EPERM, "{name}");
        }
        let newuser = libc::CLONE_NEWUSER as u64;
        assert_eq!(
            program.answer("clone", [newuser, 0, 0, 0, 0, 0]).unwrap(),
            EPERM
        );
        assert_eq!(
            program.answer("clone", [0x11, 0, 0, 0, 0, 0]).unwrap(),
            Action::Allow
        );
        let enosys = Action::Errno(libc::ENOSYS as u16);
        assert_eq!(program.answer("clone3", [0; 6]).unwrap(), enosys);
        assert_eq!(
            program.answer("socket", [40, 0, 0, 0, 0, 0]).unwrap(),
            EPERM
        );
        assert_eq!(
            program.answer("socket", [2, 0, 0, 0, 0, 0]).unwrap(),
            Action::Allow
        );
        assert_eq!(
            program
                .answer("personality", [0x0040_0000, 0, 0, 0, 0, 0])
                .unwrap(),
            EPERM
        );
        assert_eq!(program.answer("fchownat", [0; 6]).unwrap(), Action::Allow);
    }

    #[test]
    fn unconfined_is_no_filter_unless_root_is_emulated() {
        let caps = default_caps();
        assert_eq!(program(&Policy::Unconfined, &caps, false).unwrap(), None);
        let emulating = program(&Policy::Unconfined, &caps, true).unwrap().unwrap();
        assert_eq!(emulating.answer("keyctl", [0; 6]).unwrap(), Action::Allow);
        assert_eq!(
            emulating.answer("fchownat", [0; 6]).unwrap(),
            Action::Errno(0)
        );
        let builtin = program(&Policy::Builtin, &caps, true).unwrap().unwrap();
        assert_eq!(
            builtin.answer("fchownat", [0; 6]).unwrap(),
            Action::Errno(0)
        );
        assert_eq!(builtin.answer("keyctl", [0; 6]).unwrap(), EPERM);
    }

    #[test]
    fn programs_survive_their_bytes() {
        let program = program(&Policy::Builtin, &default_caps(), true)
            .unwrap()
            .unwrap();
        assert_eq!(Program::from_bytes(&program.to_bytes()).unwrap(), program);
        assert!(Program::from_bytes(&[1, 2, 3]).is_err());
    }

    #[test]
    fn policies_by_name() {
        assert_eq!(Policy::parse("unconfined"), Policy::Unconfined);
        assert_eq!(
            Policy::parse("./p.json"),
            Policy::Profile("./p.json".into())
        );
    }
}
