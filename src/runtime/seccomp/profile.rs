//! Seccomp profiles as docker writes them (`moby/profiles`'s JSON format),
//! and their resolution into a filter for one container: entries apply or
//! not by the container's capabilities, this machine's architecture and
//! its kernel, and syscall names become this architecture's numbers.

use std::str::FromStr;

use anyhow::{bail, Context, Result};
use caps::{Capability, CapsHashSet};
use serde::Deserialize;

use super::bpf::{Action, ArgCheck, Filter, Op, Rule};

/// A profile: what answers a syscall no entry names, and the entries.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub default: Action,
    pub entries: Vec<Entry>,
}

/// `action` for the syscalls `names`, when the argument checks hold (all
/// of them, or any one when two check the same argument, as runc has it)
/// and the entry applies to this container.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub names: Vec<String>,
    pub action: Action,
    pub args: Vec<ArgCheck>,
    /// The entry applies only when all of these hold...
    pub includes: Conditions,
    /// ...and none of these.
    pub excludes: Conditions,
}

/// What an entry's `includes` or `excludes` names.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Conditions {
    pub caps: Vec<Capability>,
    /// Architectures as docker names them (`amd64`, `arm64`, `x86`...).
    pub arches: Vec<String>,
    pub min_kernel: Option<(u32, u32)>,
}

/// The container a profile is resolved for.
pub struct Target<'a> {
    pub caps: &'a CapsHashSet,
    /// The running kernel's version (major, minor).
    pub kernel: (u32, u32),
}

/// This machine's architecture as docker's profiles name it.
#[cfg(target_arch = "x86_64")]
const NATIVE_ARCH: &str = "amd64";
#[cfg(target_arch = "aarch64")]
const NATIVE_ARCH: &str = "arm64";

impl Entry {
    fn applies_to(&self, target: &Target<'_>) -> bool {
        let inc = &self.includes;
        let exc = &self.excludes;
        inc.caps.iter().all(|cap| target.caps.contains(cap))
            && (inc.arches.is_empty() || inc.arches.iter().any(|a| a == NATIVE_ARCH))
            && inc.min_kernel.is_none_or(|min| target.kernel >= min)
            && !exc.caps.iter().any(|cap| target.caps.contains(cap))
            && !exc.arches.iter().any(|a| a == NATIVE_ARCH)
            && exc.min_kernel.is_none_or(|min| target.kernel < min)
    }

    /// The entry's argument checks as rules' check lists: one list (all
    /// must hold) or, when two checks are on one argument, one list per
    /// check (any may hold).
    fn check_lists(&self) -> Vec<Vec<ArgCheck>> {
        let mut indexes: Vec<u8> = self.args.iter().map(|a| a.index).collect();
        indexes.sort_unstable();
        indexes.dedup();
        if indexes.len() == self.args.len() {
            vec![self.args.clone()]
        } else {
            self.args.iter().map(|check| vec![*check]).collect()
        }
    }
}

impl Profile {
    /// The filter this profile gives `target`. A syscall this architecture
    /// does not have is left out, as runc leaves it. For each syscall, the
    /// entries with argument checks come first, in order, then the first
    /// without: that one would answer every call, leaving the rest unused.
    pub fn resolve(&self, target: &Target<'_>) -> Filter {
        let mut conditional = vec![];
        let mut unconditional: Vec<Rule> = vec![];
        // The syscalls `unconditional` answers: a set, not a scan of it
        // for each of the profile's 400-odd names.
        let mut answered = std::collections::HashSet::new();
        for entry in self.entries.iter().filter(|e| e.applies_to(target)) {
            for name in &entry.names {
                let Some(nr) = syscall_number(name) else {
                    continue;
                };
                for checks in entry.check_lists() {
                    let rule = Rule {
                        nr,
                        checks,
                        action: entry.action,
                    };
                    match rule.checks.is_empty() {
                        false => conditional.push(rule),
                        true if !answered.insert(nr) => {}
                        true => unconditional.push(rule),
                    }
                }
            }
        }
        conditional.extend(unconditional);
        Filter {
            default: self.default,
            rules: conditional,
        }
    }
}

/// The number of syscall `name` on this architecture.
pub fn syscall_number(name: &str) -> Option<u32> {
    syscalls::Sysno::from_str(name)
        .ok()
        .map(|sysno| sysno.id() as u32)
}

// ---- docker's JSON format ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProfileFile {
    default_action: String,
    default_errno_ret: Option<u16>,
    #[serde(default)]
    syscalls: Vec<SyscallEntry>,
    listener_path: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SyscallEntry {
    #[serde(default)]
    names: Vec<String>,
    /// The older form: one name.
    name: Option<String>,
    action: String,
    errno_ret: Option<u16>,
    #[serde(default)]
    args: Option<Vec<ArgEntry>>,
    #[serde(default)]
    includes: ConditionsEntry,
    #[serde(default)]
    excludes: ConditionsEntry,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArgEntry {
    index: u8,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ConditionsEntry {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

/// Reads a profile in docker's JSON format, saying which entry rocker
/// cannot honour when there is one.
pub fn parse_json(text: &str) -> Result<Profile> {
    let file: ProfileFile = serde_json::from_str(text).context("not a seccomp profile")?;
    if file.listener_path.is_some() {
        bail!("listenerPath (seccomp notifications) is not supported by rocker");
    }
    let default =
        action(&file.default_action, file.default_errno_ret).context("its defaultAction")?;
    let mut entries = vec![];
    for (index, entry) in file.syscalls.into_iter().enumerate() {
        let mut names = entry.names;
        names.extend(entry.name);
        let describe = || format!("syscalls[{index}] ({})", names.join(", "));
        let parsed = (|| -> Result<Entry> {
            Ok(Entry {
                action: action(&entry.action, entry.errno_ret)?,
                args: entry
                    .args
                    .unwrap_or_default()
                    .iter()
                    .map(arg_check)
                    .collect::<Result<_>>()?,
                includes: conditions(&entry.includes)?,
                excludes: conditions(&entry.excludes)?,
                names: names.clone(),
            })
        })()
        .with_context(describe)?;
        entries.push(parsed);
    }
    Ok(Profile { default, entries })
}

fn action(name: &str, errno: Option<u16>) -> Result<Action> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(errno.unwrap_or(libc::EPERM as u16)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_TRACE" | "SCMP_ACT_NOTIFY" => {
            bail!("the action {name} needs a tracer or a notification listener, which rocker does not provide")
        }
        other => bail!("unknown action {other:?}"),
    })
}

fn arg_check(arg: &ArgEntry) -> Result<ArgCheck> {
    if arg.index > 5 {
        bail!("argument index {} (a syscall has 6)", arg.index);
    }
    let (op, value) = match arg.op.as_str() {
        "SCMP_CMP_EQ" => (Op::Eq, arg.value),
        "SCMP_CMP_NE" => (Op::Ne, arg.value),
        "SCMP_CMP_LT" => (Op::Lt, arg.value),
        "SCMP_CMP_LE" => (Op::Le, arg.value),
        "SCMP_CMP_GT" => (Op::Gt, arg.value),
        "SCMP_CMP_GE" => (Op::Ge, arg.value),
        // libseccomp's order: value is the mask, valueTwo the datum.
        "SCMP_CMP_MASKED_EQ" => (Op::MaskedEq(arg.value), arg.value_two),
        other => bail!("unknown comparison {other:?}"),
    };
    Ok(ArgCheck {
        index: arg.index,
        op,
        value,
    })
}

fn conditions(entry: &ConditionsEntry) -> Result<Conditions> {
    let caps = entry
        .caps
        .iter()
        .flatten()
        .map(|name| parse_capability(name))
        .collect::<Result<_>>()?;
    let min_kernel = entry
        .min_kernel
        .as_deref()
        .map(|text| kernel_version(text).with_context(|| format!("minKernel {text:?}")))
        .transpose()?;
    Ok(Conditions {
        caps,
        arches: entry.arches.clone().unwrap_or_default(),
        min_kernel,
    })
}

/// A capability by name, with or without `CAP_`, in any case.
pub fn parse_capability(name: &str) -> Result<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    let full = match upper.starts_with("CAP_") {
        true => upper,
        false => format!("CAP_{upper}"),
    };
    Capability::from_str(&full).map_err(|_| anyhow::anyhow!("unknown capability {name:?}"))
}

/// `MAJOR.MINOR` from a kernel release such as `6.1.0-18-amd64`.
pub fn kernel_version(release: &str) -> Result<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok());
    let minor = parts.next().and_then(|p| p.parse().ok());
    match (major, minor) {
        (Some(major), Some(minor)) => Ok((major, minor)),
        _ => bail!("{release:?} is no kernel version"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_fields_and_their_errors() {
        let profile = parse_json(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "syscalls": [
                {"name": "mkdir", "action": "SCMP_ACT_ERRNO", "errnoRet": 28},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}, "includes": {"minKernel": "4.8"}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(profile.default, Action::Errno(1));
        assert_eq!(profile.entries[0].names, ["mkdir"]);
        assert_eq!(profile.entries[0].action, Action::Errno(28));
        let clone = &profile.entries[1];
        assert_eq!(clone.args[0].op, Op::MaskedEq(2114060288));
        assert_eq!(clone.args[0].value, 0);
        assert_eq!(clone.excludes.caps, [Capability::CAP_SYS_ADMIN]);
        assert_eq!(clone.includes.min_kernel, Some((4, 8)));

        for (bad, named) in [
            (r#"{"defaultAction": "SCMP_ACT_NOPE"}"#, "defaultAction"),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_NOTIFY"}]}"#,
                "syscalls[0] (ptrace)",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 9, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
                "argument index 9",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_NOPE"]}}]}"#,
                "CAP_NOPE",
            ),
        ] {
            let err = format!("{:#}", parse_json(bad).unwrap_err());
            assert!(err.contains(named), "{err}");
        }
    }

    #[test]
    fn capabilities_and_kernel_versions() {
        assert_eq!(
            parse_capability("net_raw").unwrap(),
            Capability::CAP_NET_RAW
        );
        assert_eq!(
            parse_capability("CAP_CHOWN").unwrap(),
            Capability::CAP_CHOWN
        );
        assert!(parse_capability("flying").is_err());
        assert_eq!(kernel_version("6.1.0-18-amd64").unwrap(), (6, 1));
        assert_eq!(kernel_version("4.8").unwrap(), (4, 8));
        assert!(kernel_version("linux").is_err());
    }

    #[test]
    fn checks_on_one_argument_are_alternatives() {
        let check = |index, value| ArgCheck {
            index,
            op: Op::Eq,
            value,
        };
        let entry = |args| Entry {
            names: vec!["personality".into()],
            action: Action::Allow,
            args,
            includes: Conditions::default(),
            excludes: Conditions::default(),
        };
        assert_eq!(entry(vec![check(0, 1), check(1, 2)]).check_lists().len(), 1);
        assert_eq!(entry(vec![check(0, 1), check(0, 2)]).check_lists().len(), 2);
    }
}
