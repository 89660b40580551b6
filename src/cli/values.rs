//! Parsing of option values that carry their own syntax: the flag parsers
//! clap calls (`--network`, `-p`, sizes, `--cpus`, `--log-opt`), and those
//! `run` applies once it has the image (`-e`, `--env-file`, `--tmpfs`;
//! `-v` and `--mount` are in `mounts`). Pure functions with table tests;
//! nothing here touches the system except reading an env file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::network::ports::{self, PortMapping};
use crate::network::NetworkMode;
use crate::spec::SeccompPolicy;
use crate::spec::{Environment, TmpfsOptions, UserMount};

/// The ports one `-p` publishes (a range gives several).
#[derive(Debug, Clone)]
pub struct PublishedPorts(pub Vec<PortMapping>);

// Flags are checked where flags are parsed: a bad value fails with 125
// before anything is pulled or made.
pub(super) fn network_flag(text: &str) -> Result<NetworkMode, String> {
    NetworkMode::parse(text).map_err(|err| format!("{err:#}"))
}

pub(super) fn publish_flag(text: &str) -> Result<PublishedPorts, String> {
    ports::parse(text)
        .map(PublishedPorts)
        .map_err(|err| format!("{err:#}"))
}

pub(super) fn size_flag(text: &str) -> Result<u64, String> {
    crate::host::config::parse_size(text).map_err(|err| format!("{err:#}"))
}

pub(super) fn swap_flag(text: &str) -> Result<i64, String> {
    crate::cgroups::limits::parse_swap(text).map_err(|err| format!("{err:#}"))
}

pub(super) fn cpus_flag(text: &str) -> Result<f64, String> {
    crate::cgroups::limits::parse_cpus(text).map_err(|err| format!("{err:#}"))
}

/// `--stop-signal`: a signal rocker can send, kept as given.
pub(super) fn signal_flag(text: &str) -> Result<String, String> {
    crate::spec::parse_signal(text)
        .map(|_| text.to_string())
        .map_err(|err| format!("{err:#}"))
}

/// A `--security-opt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOpt {
    Seccomp(SeccompPolicy),
    RootEmulation(bool),
    /// no_new_privs is always set; the option is taken for docker's sake.
    NoNewPrivileges,
    /// Paths not to mask or make read-only: podman's `unmask=ALL` or
    /// `unmask=/proc/kcore:/proc/sys`, docker's `systempaths=unconfined`
    /// (all of them).
    Unmask(Vec<String>),
}

pub(super) fn security_opt_flag(text: &str) -> Result<SecurityOpt, String> {
    let (key, value) = match text.split_once(['=', ':']) {
        Some((key, value)) => (key, Some(value)),
        None => (text, None),
    };
    let boolean = |value: Option<&str>| match value {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!("{key} takes true or false, not {other:?}")),
    };
    match (key, value) {
        ("seccomp", Some(value)) if !value.is_empty() => {
            Ok(SecurityOpt::Seccomp(SeccompPolicy::parse(value)))
        }
        ("root-emulation", value) => boolean(value).map(SecurityOpt::RootEmulation),
        ("no-new-privileges", value) => match boolean(value)? {
            true => Ok(SecurityOpt::NoNewPrivileges),
            false => Err("rocker always sets no-new-privileges".to_string()),
        },
        ("systempaths", Some("unconfined")) => Ok(SecurityOpt::Unmask(vec!["ALL".into()])),
        ("unmask", Some(paths)) if !paths.is_empty() => {
            let paths: Vec<String> = paths.split(':').map(str::to_string).collect();
            match paths
                .iter()
                .find(|p| p.as_str() != "ALL" && !p.starts_with('/'))
            {
                Some(bad) => Err(format!("unmask={bad}: give ALL or absolute paths")),
                None => Ok(SecurityOpt::Unmask(paths)),
            }
        }
        _ => Err(format!(
            "unknown security option {text:?}: rocker takes seccomp=unconfined|PROFILE.json, \
             root-emulation=true|false, no-new-privileges, systempaths=unconfined and \
             unmask=ALL|PATH[:PATH...]"
        )),
    }
}

/// A `--log-opt`.
#[derive(Debug, Clone, Copy)]
pub enum LogOption {
    MaxSize(u64),
}

pub(super) fn log_opt_flag(text: &str) -> Result<LogOption, String> {
    match text.split_once('=') {
        Some(("max-size", size)) => crate::host::config::parse_size(size)
            .map_err(|err| format!("{err:#}"))
            .and_then(|size| match size {
                0 => Err("max-size must be above 0".to_string()),
                size => Ok(LogOption::MaxSize(size)),
            }),
        _ => Err("the log option rocker knows is max-size=SIZE".to_string()),
    }
}

/// `--log-driver`: json-file or none (docker's others need its daemon).
pub(super) fn log_driver_flag(text: &str) -> Result<crate::spec::LogDriver, String> {
    use crate::spec::LogDriver;
    match text {
        "json-file" | "k8s-file" => Ok(LogDriver::JsonFile),
        "none" => Ok(LogDriver::None),
        other => Err(format!(
            "log driver {other:?}: rocker keeps json-file logs, or none (journald, syslog and \
             the others need docker's daemon)"
        )),
    }
}

/// A boolean flag's value, as docker writes them (`--rm=true`,
/// `--tty=false`; `--rm` alone is true).
pub(super) fn bool_flag(text: &str) -> Result<bool, String> {
    match text {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(false),
        other => Err(format!("{other:?} is not a boolean: give true or false")),
    }
}

/// `--format`: `text` or `table` (the default table), `json`, or a Go
/// template (anything with `{{`).
/// `--ipc` and `--uts`: true for `host`, false for the container's own
/// (`private`, `shareable`, or empty). Sharing another container's
/// (`container:NAME`) is not there yet.
pub(super) fn namespace_mode_flag(text: &str) -> Result<bool, String> {
    match text {
        "host" => Ok(true),
        "" | "private" | "shareable" => Ok(false),
        other if other.starts_with("container:") => Err(format!(
            "{other}: sharing another container's namespace is not supported; use host or private"
        )),
        other => Err(format!("unknown mode {other:?}: use host or private")),
    }
}

pub(super) fn format_flag(text: &str) -> Result<super::args::Format, String> {
    use super::args::Format;
    match text {
        "text" | "table" => Ok(Format::Text),
        "json" => Ok(Format::Json),
        template if template.contains("{{") => Ok(Format::Template(template.to_string())),
        other => Err(format!(
            "unknown format {other:?}: give text, json or a Go template such as '{{{{.ID}}}}'"
        )),
    }
}

/// `--detach-keys`: the key sequence that detaches an attach client, as
/// the bytes the terminal sends for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(pub Vec<u8>);

/// docker's default: Ctrl-P, Ctrl-Q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

impl Default for DetachKeys {
    fn default() -> DetachKeys {
        DetachKeys(DEFAULT_DETACH_KEYS.to_vec())
    }
}

/// docker's grammar: comma-separated keys, each a single character or
/// `ctrl-X` with X a letter or one of `@ [ \ ] ^ _`. Empty is the default.
pub(super) fn detach_keys_flag(text: &str) -> Result<DetachKeys, String> {
    if text.is_empty() {
        return Ok(DetachKeys::default());
    }
    let key = |key: &str| -> Result<u8, String> {
        let bad = || {
            format!(
                "unknown key {key:?} in --detach-keys: give keys like ctrl-p,ctrl-q or a,b \
                 (ctrl- with a letter or one of @[\\]^_)"
            )
        };
        match (key.len(), key.strip_prefix("ctrl-")) {
            (1, _) if key.is_ascii() => Ok(key.as_bytes()[0]),
            (_, Some(control)) => match control.as_bytes() {
                [letter @ b'a'..=b'z'] => Ok(letter - b'a' + 1),
                [letter @ b'A'..=b'Z'] => Ok(letter - b'A' + 1),
                [b'@'] => Ok(0),
                [symbol @ (b'[' | b'\\' | b']' | b'^' | b'_')] => Ok(symbol - b'[' + 27),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    };
    text.split(',')
        .map(key)
        .collect::<Result<_, _>>()
        .map(DetachKeys)
}

/// One `-e` value: `NAME=VALUE`, or `NAME` alone to copy the caller's value
/// (skipped when the caller has none, as docker does).
pub fn parse_env_entry(
    entry: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<(String, String)>> {
    let (name, value) = match entry.split_once('=') {
        Some((name, value)) => (name, Some(value.to_string())),
        None => (entry, None),
    };
    if name.is_empty() || name.contains(char::is_whitespace) || name.contains('\0') {
        bail!("invalid environment variable {entry:?}: expected NAME=VALUE or NAME");
    }
    if value.as_deref().is_some_and(|v| v.contains('\0')) {
        bail!("invalid environment variable {name:?}: the value contains a NUL byte");
    }
    Ok(value
        .or_else(|| lookup(name))
        .map(|v| (name.to_string(), v)))
}

/// The entries of an `--env-file`: one `NAME=VALUE` or `NAME` a line; blank
/// lines and lines starting with `#` are skipped.
pub fn parse_env_file(text: &str) -> Vec<&str> {
    text.lines()
        .map(|line| line.trim_start())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// Applies `--env-file` files, then `-e` entries, to `env` (later wins);
/// a bare `NAME` copies the caller's value.
pub fn apply_env_options(
    env: &mut Environment,
    files: &[PathBuf],
    entries: &[String],
) -> Result<()> {
    let mut all = vec![];
    for file in files {
        let text = read_env_file(file)?;
        all.extend(parse_env_file(&text).into_iter().map(String::from));
    }
    all.extend(entries.iter().cloned());
    let host_env = |name: &str| std::env::var(name).ok();
    for entry in &all {
        if let Some((name, value)) = parse_env_entry(entry, host_env)? {
            env.set(&name, &value);
        }
    }
    Ok(())
}

/// The most an `--env-file` may hold (`--env-file /dev/zero` must not
/// fill memory); a FIFO (`--env-file <(...)`) is fine.
const ENV_FILE_LIMIT: u64 = 4 << 20;

pub fn read_env_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let read = || -> std::io::Result<String> {
        let mut text = String::new();
        std::fs::File::open(path)?
            .take(ENV_FILE_LIMIT + 1)
            .read_to_string(&mut text)?;
        Ok(text)
    };
    let text = read().with_context(|| format!("reading env file {}", path.display()))?;
    if text.len() as u64 > ENV_FILE_LIMIT {
        bail!(
            "env file {} is larger than {ENV_FILE_LIMIT} bytes",
            path.display()
        );
    }
    Ok(text)
}

/// A hostname as RFC 1123 has them: dot-separated labels of 1 to 63
/// letters, digits and hyphens, not starting or ending with a hyphen, 64
/// characters at most (the kernel's limit). Anything else could inject
/// lines into the container's /etc/hosts and /etc/hostname.
pub fn check_hostname(name: &str) -> Result<()> {
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if name.is_empty() || name.len() > 64 || !name.split('.').all(label_ok) {
        bail!(
            "invalid hostname {name:?}: up to 64 characters of letters, digits, hyphens and \
             dots (RFC 1123 labels)"
        );
    }
    Ok(())
}

/// Checks a path inside the container: absolute, and no NUL bytes.
pub fn container_path(path: &str, what: &str) -> Result<String> {
    if !path.starts_with('/') || path.contains('\0') {
        bail!("{what} {path:?} must be an absolute path inside the container");
    }
    Ok(path.to_string())
}

/// One `--tmpfs DST[:OPTS]`. OPTS are mount flags (`ro`, `rw`, `exec`,
/// `noexec`, `suid`, `nosuid`, `dev`, `nodev`) and tmpfs settings (`size=`,
/// `mode=`, `nr_inodes=`, `uid=`, `gid=`). The default is docker's:
/// `rw,noexec,nosuid,nodev,mode=1777`.
pub fn parse_tmpfs(spec: &str) -> Result<UserMount> {
    let (destination, options) = spec.split_once(':').unwrap_or((spec, ""));
    let destination = container_path(destination, "tmpfs destination")?;
    let mut parsed = TmpfsOptions {
        read_only: false,
        noexec: true,
        nosuid: true,
        nodev: true,
        data: String::new(),
    };
    let mut data = vec![];
    let mut has_mode = false;
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let key = option.split_once('=').map_or(option, |(k, _)| k);
        match option {
            "ro" => parsed.read_only = true,
            "rw" => parsed.read_only = false,
            "exec" => parsed.noexec = false,
            "noexec" => parsed.noexec = true,
            "suid" => parsed.nosuid = false,
            "nosuid" => parsed.nosuid = true,
            "dev" => parsed.nodev = false,
            "nodev" => parsed.nodev = true,
            _ if option.contains('=')
                && matches!(key, "size" | "mode" | "nr_inodes" | "uid" | "gid") =>
            {
                has_mode |= key == "mode";
                data.push(option.to_string());
            }
            _ => bail!(
                "invalid tmpfs option {option:?} in {spec:?} (known: ro, rw, exec, noexec, \
                 suid, nosuid, dev, nodev, size=, mode=, nr_inodes=, uid=, gid=)"
            ),
        }
    }
    if !has_mode {
        data.push("mode=1777".to_string());
    }
    parsed.data = data.join(",");
    Ok(UserMount::Tmpfs {
        destination,
        options: parsed,
    })
}

/// Makes a relative host path absolute against `cwd`, for error messages and
/// for `--rootfs`.
pub fn absolute(path: &Path, cwd: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_follow_dockers_grammar() {
        let keys = |text| detach_keys_flag(text).map(|keys| keys.0);
        assert_eq!(keys("ctrl-p,ctrl-q"), Ok(vec![0x10, 0x11]));
        assert_eq!(keys(""), Ok(DEFAULT_DETACH_KEYS.to_vec()));
        assert_eq!(
            keys("a,ctrl-@,ctrl-[,ctrl-\\,ctrl-_"),
            Ok(vec![b'a', 0, 27, 28, 31])
        );
        assert!(keys("ctrl-1").is_err());
        assert!(keys("ab").is_err());
        assert!(keys("ctrl-p,").is_err());
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn env_entries() {
        let host = |name: &str| (name == "HOSTVAR").then(|| "from-host".to_string());
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("A=1", Some(("A", "1"))),
            ("A=", Some(("A", ""))),
            ("A=b=c", Some(("A", "b=c"))),
            ("HOSTVAR", Some(("HOSTVAR", "from-host"))),
            ("UNSET", None),
        ];
        for (entry, want) in cases {
            let got = parse_env_entry(entry, host).unwrap();
            let want = want.map(|(n, v)| (n.to_string(), v.to_string()));
            assert_eq!(got, want, "{entry}");
        }
        for bad in ["", "=x", "A B=1", "A\0=1"] {
            assert!(parse_env_entry(bad, no_env).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn hostnames_are_rfc_1123_labels() {
        for good in ["box", "web-1", "a.b.c", "0abc", &"x".repeat(63)] {
            assert!(check_hostname(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "a\nb",
            "evil\n10.0.0.1 bank",
            "-a",
            "a-",
            "a..b",
            "a b",
            "a/b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_endless_env_file_is_refused_not_read_whole() {
        let err = format!("{:#}", read_env_file(Path::new("/dev/zero")).unwrap_err());
        assert!(err.contains("/dev/zero"), "{err}");
    }

    #[test]
    fn env_file_lines() {
        let text = "# comment\n\nA=1\n  B=two words\nC\n";
        assert_eq!(parse_env_file(text), vec!["A=1", "B=two words", "C"]);
    }

    #[test]
    fn tmpfs_defaults_and_options() {
        let UserMount::Tmpfs {
            destination,
            options,
        } = parse_tmpfs("/run").unwrap()
        else {
            panic!("not a tmpfs")
        };
        assert_eq!(destination, "/run");
        assert!(options.noexec && options.nosuid && options.nodev && !options.read_only);
        assert_eq!(options.data, "mode=1777");

        let UserMount::Tmpfs { options, .. } = parse_tmpfs("/x:exec,size=1m,mode=700,ro").unwrap()
        else {
            panic!("not a tmpfs")
        };
        assert!(!options.noexec && options.read_only);
        assert_eq!(options.data, "size=1m,mode=700");

        assert!(parse_tmpfs("x").is_err());
        assert!(parse_tmpfs("/x:bogus").is_err());
        assert!(parse_tmpfs("/x:size").is_err());
    }
}
