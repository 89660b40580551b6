//! Root emulation: in a user namespace that maps one id, root's id
//! changes cannot work (there is no other id to change to), and package
//! managers stop at the first chown to a system user. When the container
//! user is root, the filter answers those calls with success without
//! running them, as Charliecloud and enroot do:
//!
//! - the chown family, and the set*id family with setgroups: nothing
//!   changes (files stay owned by the caller on the host, and `getuid()`
//!   after a faked `setuid()` still says 0);
//! - mknod of a character or block device: nothing is made (FIFOs and
//!   sockets are made for real).
//!
//! The kernel grants nothing it would not have granted: a faked call does
//! nothing at all. The lie only keeps programs that insist on these calls
//! going. It applies only to calls the syscall filter allows.

use super::seccomp::bpf::{Action, ArgCheck, Filter, Op, Rule};
use super::seccomp::profile::syscall_number;

/// Calls faked whatever their arguments.
const ID_CHANGES: &[&str] = &[
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "chown32",
    "fchown32",
    "lchown32",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    "setuid32",
    "setgid32",
    "setreuid32",
    "setregid32",
    "setresuid32",
    "setresgid32",
    "setfsuid32",
    "setfsgid32",
    "setgroups32",
];

/// mknod and mknodat, with the index of their mode argument.
const MKNOD: &[(&str, u8)] = &[("mknod", 1), ("mknodat", 2)];

/// What success looks like to the caller of a faked call.
const FAKED: Action = Action::Errno(0);

/// Puts root emulation in front of `filter`'s rules, for each call that
/// `filter` allows whatever its arguments (a call it refuses, or checks,
/// keeps its answer).
pub fn apply(filter: &mut Filter) {
    let mut faked = vec![];
    for name in ID_CHANGES {
        if let Some(nr) = allowed_unconditionally(filter, name) {
            faked.push(Rule {
                nr,
                checks: vec![],
                action: FAKED,
            });
        }
    }
    for (name, mode_index) in MKNOD {
        let Some(nr) = allowed_unconditionally(filter, name) else {
            continue;
        };
        for kind in [libc::S_IFCHR, libc::S_IFBLK] {
            faked.push(Rule {
                nr,
                checks: vec![ArgCheck {
                    index: *mode_index,
                    op: Op::MaskedEq(u64::from(libc::S_IFMT)),
                    value: u64::from(kind),
                }],
                action: FAKED,
            });
        }
    }
    faked.append(&mut filter.rules);
    filter.rules = faked;
}

/// The number of syscall `name` when `filter` allows it whatever its
/// arguments: every rule for it allows, and one has no checks (or there
/// is none and the default allows).
fn allowed_unconditionally(filter: &Filter, name: &str) -> Option<u32> {
    let nr = syscall_number(name)?;
    let rules: Vec<&Rule> = filter.rules.iter().filter(|r| r.nr == nr).collect();
    let allowed = match rules.as_slice() {
        [] => filter.default == Action::Allow,
        rules => {
            rules.iter().all(|r| r.action == Action::Allow)
                && rules.iter().any(|r| r.checks.is_empty())
        }
    };
    allowed.then_some(nr)
}

#[cfg(test)]
mod tests {
    use super::super::seccomp::bpf::{self, SyscallData, NATIVE_ARCH};
    use super::*;

    fn answer(filter: &Filter, name: &str, args: [u64; 6]) -> Action {
        let program = bpf::compile(filter).unwrap();
        let data = SyscallData {
            nr: syscall_number(name).unwrap(),
            arch: NATIVE_ARCH,
            args,
        };
        bpf::action_of(bpf::run(&program, &data).unwrap())
    }

    fn allowing(names: &[&str]) -> Filter {
        Filter {
            default: Action::Errno(1),
            rules: names
                .iter()
                .map(|name| Rule {
                    nr: syscall_number(name).unwrap(),
                    checks: vec![],
                    action: Action::Allow,
                })
                .collect(),
        }
    }

    #[test]
    fn id_changes_and_device_nodes_are_faked_fifos_are_not() {
        let mut filter = allowing(&["fchownat", "setresuid", "setgroups", "mknodat", "read"]);
        apply(&mut filter);
        assert_eq!(answer(&filter, "fchownat", [0; 6]), FAKED);
        assert_eq!(answer(&filter, "setresuid", [42, 42, 42, 0, 0, 0]), FAKED);
        assert_eq!(answer(&filter, "setgroups", [0; 6]), FAKED);
        let mode = |kind: u32| [0, 0, u64::from(kind | 0o644), 0, 0, 0];
        assert_eq!(answer(&filter, "mknodat", mode(libc::S_IFCHR)), FAKED);
        assert_eq!(answer(&filter, "mknodat", mode(libc::S_IFBLK)), FAKED);
        assert_eq!(
            answer(&filter, "mknodat", mode(libc::S_IFIFO)),
            Action::Allow
        );
        assert_eq!(
            answer(&filter, "mknodat", mode(libc::S_IFSOCK)),
            Action::Allow
        );
        assert_eq!(answer(&filter, "read", [0; 6]), Action::Allow);
    }

    #[test]
    fn a_call_the_filter_refuses_stays_refused() {
        let mut filter = allowing(&["read"]);
        apply(&mut filter);
        assert_eq!(answer(&filter, "fchownat", [0; 6]), Action::Errno(1));
        let mut open = Filter {
            default: Action::Allow,
            rules: vec![],
        };
        apply(&mut open);
        assert_eq!(answer(&open, "fchownat", [0; 6]), FAKED);
    }
}
