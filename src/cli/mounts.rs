//! `-v` and `--mount`, docker's two spellings of a mount, parsed into what
//! `run` mounts: a host path, a tmpfs, or a volume to find or make.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::values::{container_path, parse_tmpfs};
use crate::spec::{MountRequest, UserMount, VolumeRequest};

/// Options docker takes that change nothing here: SELinux relabelling
/// (`z`, `Z`: an unprivileged user cannot relabel, and rootless containers
/// run unconfined by SELinux anyway), `U` (chown to the container user:
/// every file is already the caller's, who is the container's root), and
/// Docker Desktop's consistency hints.
const NO_EFFECT: &[&str] = &["z", "Z", "U", "cached", "delegated", "consistent"];

/// Propagation modes: rocker's mounts are private (the container's mount
/// namespace is cut off from the host's), which docker's default is too.
const PRIVATE: &[&str] = &["private", "rprivate"];
const PROPAGATING: &[&str] = &["shared", "rshared", "slave", "rslave"];

fn refuse_propagation(option: &str, spec: &str) -> Result<()> {
    bail!(
        "invalid mount {spec:?}: {option} propagation is not supported: rocker's mounts are \
         private to the container (drop the option, or use rprivate)"
    )
}

/// One `-v`: `SRC:DST[:OPTS]`, SRC a host path (absolute, or relative to
/// `cwd` when it starts with `.`) that must exist, or a volume name; or
/// `DST` alone, an anonymous volume. OPTS: `ro`, `rw`, `nocopy` (volumes),
/// the private propagation modes, and those of `NO_EFFECT`.
pub fn parse_volume(spec: &str, cwd: &Path) -> Result<MountRequest> {
    const FORM: &str = "expected -v HOST_PATH:CONTAINER_PATH[:OPTIONS], \
                        -v VOLUME:CONTAINER_PATH[:OPTIONS] or -v CONTAINER_PATH";
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, options) = match parts.as_slice() {
        [destination] => ("", *destination, ""),
        [source, destination] => (*source, *destination, ""),
        [source, destination, options] => (*source, *destination, *options),
        _ => bail!("invalid volume {spec:?}: {FORM}"),
    };
    if destination.is_empty() || (parts.len() > 1 && source.is_empty()) {
        bail!("invalid volume {spec:?}: {FORM}");
    }
    let destination = container_path(destination, "volume destination")?;
    let mut read_only = false;
    let mut no_copy = false;
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" => no_copy = true,
            _ if NO_EFFECT.contains(&option) || PRIVATE.contains(&option) => {}
            _ if PROPAGATING.contains(&option) => refuse_propagation(option, spec)?,
            other => bail!(
                "invalid volume {spec:?}: unknown option {other:?} (known: ro, rw, nocopy, z, Z, \
                 U, cached, delegated, consistent, private, rprivate)"
            ),
        }
    }
    let is_path = source.starts_with('/') || source.starts_with('.');
    if is_path {
        if no_copy {
            bail!("invalid volume {spec:?}: nocopy applies to volumes, not to host paths");
        }
        let source = host_source(&cwd.join(source), "volume source")?;
        return Ok(MountRequest::Mount(UserMount::Bind {
            source,
            destination,
            read_only,
        }));
    }
    let name = match source {
        "" => None,
        name => {
            crate::volume::check_name(name).with_context(|| {
                format!(
                    "invalid volume {spec:?}: a source is a host path (absolute, or starting \
                     with ./) or a volume name"
                )
            })?;
            Some(name.to_string())
        }
    };
    Ok(MountRequest::Volume(VolumeRequest {
        name,
        destination,
        read_only,
        no_copy,
        labels: BTreeMap::new(),
    }))
}

/// A host path to bind: it must exist; symlinks resolved here, on the host.
fn host_source(path: &Path, what: &str) -> Result<std::path::PathBuf> {
    std::fs::canonicalize(path)
        .with_context(|| format!("{what} {} does not exist; create it first", path.display()))
}

/// A `--mount` boolean: the key alone, or `=true|false|1|0`.
fn boolean(key: &str, value: Option<&str>, spec: &str) -> Result<bool> {
    match value {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => bail!("invalid mount {spec:?}: {key}={other} (give true or false)"),
    }
}

/// One `--mount type=bind|volume|tmpfs,...` with docker's keys: `source`
/// (`src`), `target` (`destination`, `dst`), `readonly` (`ro`),
/// `bind-propagation`, `volume-nocopy`, `volume-label`, `volume-driver`
/// (local only), `tmpfs-size`, `tmpfs-mode`, `consistency`. The type is
/// `volume` unless given, as in docker.
pub fn parse_mount(spec: &str, cwd: &Path) -> Result<MountRequest> {
    let mut kind = "volume";
    let mut source = None;
    let mut target = None;
    let mut read_only = false;
    let mut no_copy = false;
    let mut labels = BTreeMap::new();
    let mut tmpfs_options = vec![];
    let fields = split_fields(spec)?;
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.trim().to_ascii_lowercase(), Some(value)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        let need = |what: &str| -> Result<&str> {
            value
                .filter(|v| !v.is_empty())
                .with_context(|| format!("invalid mount {spec:?}: {key} needs {what}"))
        };
        match key.as_str() {
            "type" => kind = need("bind, volume or tmpfs")?,
            "source" | "src" => source = Some(need("a path or a volume name")?),
            "target" | "destination" | "dst" => target = Some(need("a path")?),
            "readonly" | "ro" => read_only = boolean(&key, value, spec)?,
            "volume-nocopy" => no_copy = boolean(&key, value, spec)?,
            "volume-label" => {
                let label = need("KEY=VALUE")?;
                let (k, v) = label.split_once('=').unwrap_or((label, ""));
                labels.insert(k.to_string(), v.to_string());
            }
            "volume-driver" if need("a driver")? == "local" => {}
            "volume-driver" => {
                bail!("invalid mount {spec:?}: only the local volume driver exists in rocker")
            }
            "bind-propagation" => match need("a propagation mode")? {
                mode if PRIVATE.contains(&mode) => {}
                mode if PROPAGATING.contains(&mode) => refuse_propagation(mode, spec)?,
                mode => bail!("invalid mount {spec:?}: unknown propagation {mode:?}"),
            },
            "consistency" => {}
            "tmpfs-size" => tmpfs_options.push(format!("size={}", need("a size")?)),
            "tmpfs-mode" => tmpfs_options.push(format!("mode={}", need("an octal mode")?)),
            other => bail!(
                "invalid mount {spec:?}: unknown key {other:?} (known: type, source, target, \
                 readonly, bind-propagation, volume-nocopy, volume-label, volume-driver, \
                 tmpfs-size, tmpfs-mode, consistency)"
            ),
        }
    }
    let target = target.with_context(|| format!("invalid mount {spec:?}: give target=PATH"))?;
    let destination = container_path(target, "mount target")?;
    let only_for = |what: &str, given: bool, wanted: &str| -> Result<()> {
        if given && kind != wanted {
            bail!("invalid mount {spec:?}: {what} applies to type={wanted} only");
        }
        Ok(())
    };
    only_for("volume-nocopy", no_copy, "volume")?;
    only_for("volume-label", !labels.is_empty(), "volume")?;
    only_for(
        "tmpfs-size and tmpfs-mode",
        !tmpfs_options.is_empty(),
        "tmpfs",
    )?;
    match kind {
        "bind" => {
            let source = source
                .with_context(|| format!("invalid mount {spec:?}: a bind needs source=PATH"))?;
            if !source.starts_with('/') {
                bail!("invalid mount {spec:?}: a bind source must be an absolute path");
            }
            Ok(MountRequest::Mount(UserMount::Bind {
                source: host_source(&cwd.join(source), "bind source path")?,
                destination,
                read_only,
            }))
        }
        "volume" => {
            if let Some(name) = source {
                crate::volume::check_name(name)?;
            }
            Ok(MountRequest::Volume(VolumeRequest {
                name: source.map(str::to_string),
                destination,
                read_only,
                no_copy,
                labels,
            }))
        }
        "tmpfs" => {
            if source.is_some() {
                bail!("invalid mount {spec:?}: a tmpfs has no source");
            }
            if read_only {
                tmpfs_options.push("ro".to_string());
            }
            let tmpfs = format!("{destination}:{}", tmpfs_options.join(","));
            Ok(MountRequest::Mount(parse_tmpfs(&tmpfs)?))
        }
        other => bail!("invalid mount {spec:?}: unknown type {other:?} (bind, volume or tmpfs)"),
    }
}

/// docker reads `--mount` as one CSV record: fields may be quoted, so a
/// path may hold a comma (`"source=/a,b"`); `""` is a quote.
fn split_fields(spec: &str) -> Result<Vec<String>> {
    let mut fields = vec![];
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    if quoted {
        bail!("invalid mount {spec:?}: a quote is not closed");
    }
    fields.push(field);
    Ok(fields.into_iter().filter(|f| !f.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn tmp() -> PathBuf {
        std::fs::canonicalize(std::env::temp_dir()).unwrap()
    }

    fn volume(name: Option<&str>, destination: &str, read_only: bool) -> MountRequest {
        MountRequest::Volume(VolumeRequest {
            name: name.map(String::from),
            destination: destination.into(),
            read_only,
            no_copy: false,
            labels: BTreeMap::new(),
        })
    }

    #[test]
    fn dash_v_binds_volumes_and_anonymous_volumes() {
        let tmp = tmp();
        let got = parse_volume(&format!("{}:/data:ro", tmp.display()), Path::new("/")).unwrap();
        assert_eq!(
            got,
            MountRequest::Mount(UserMount::Bind {
                source: tmp.clone(),
                destination: "/data".into(),
                read_only: true
            })
        );
        assert_eq!(parse_volume("./:/cwd", &tmp).unwrap().destination(), "/cwd");
        for options in ["z", "Z", "ro,z", "U", "cached", "delegated", "rprivate"] {
            let got = parse_volume(&format!("./:/src:{options}"), &tmp).unwrap();
            assert_eq!(got.destination(), "/src", "{options}");
        }
        assert_eq!(
            parse_volume("db:/var/lib/db:ro", &tmp).unwrap(),
            volume(Some("db"), "/var/lib/db", true)
        );
        assert_eq!(
            parse_volume("/data", &tmp).unwrap(),
            volume(None, "/data", false)
        );
        let MountRequest::Volume(request) = parse_volume("db:/x:nocopy,Z", &tmp).unwrap() else {
            panic!("not a volume");
        };
        assert!(request.no_copy);
        let errors = [
            ("relative", "absolute path"),
            ("/tmp:relative", "absolute path"),
            ("/tmp:/x:rx", "unknown option"),
            ("/tmp:/x:ro,q", "unknown option"),
            ("/tmp:/x:ro:extra", "expected -v"),
            (":/x", "expected -v"),
            ("/no/such/rocker/dir:/x", "does not exist"),
            ("a b:/x", "volume name"),
            ("/tmp:/x:nocopy", "nocopy applies to volumes"),
            ("/tmp:/x:rshared", "propagation is not supported"),
        ];
        for (spec, message) in errors {
            let err = format!("{:#}", parse_volume(spec, Path::new("/")).unwrap_err());
            assert!(err.contains(message), "{spec}: {err}");
        }
    }

    #[test]
    fn dash_dash_mount_takes_dockers_keys() {
        let tmp = tmp();
        let bind = format!("type=bind,src={},dst=/src,readonly", tmp.display());
        assert_eq!(
            parse_mount(&bind, Path::new("/")).unwrap(),
            MountRequest::Mount(UserMount::Bind {
                source: tmp.clone(),
                destination: "/src".into(),
                read_only: true,
            })
        );
        assert_eq!(
            parse_mount("source=db,target=/db", Path::new("/")).unwrap(),
            volume(Some("db"), "/db", false)
        );
        assert_eq!(
            parse_mount("type=volume,destination=/db,ro=false", Path::new("/")).unwrap(),
            volume(None, "/db", false)
        );
        let MountRequest::Volume(labelled) = parse_mount(
            "type=volume,src=db,dst=/db,volume-label=team=web,volume-nocopy=true",
            Path::new("/"),
        )
        .unwrap() else {
            panic!("not a volume");
        };
        assert_eq!(labelled.labels["team"], "web");
        assert!(labelled.no_copy);
        let MountRequest::Mount(UserMount::Tmpfs {
            destination,
            options,
        }) = parse_mount(
            "type=tmpfs,dst=/scratch,tmpfs-size=1m,tmpfs-mode=700",
            Path::new("/"),
        )
        .unwrap()
        else {
            panic!("not a tmpfs");
        };
        assert_eq!(destination, "/scratch");
        assert_eq!(options.data, "size=1m,mode=700");
        let quoted = format!("type=bind,\"source={}\",target=/x", tmp.display());
        assert!(parse_mount(&quoted, Path::new("/")).is_ok());
        let errors = [
            ("type=bind,target=/x", "needs source"),
            ("type=bind,src=rel,target=/x", "absolute path"),
            ("type=bind,src=/no/such/rocker,target=/x", "does not exist"),
            ("type=volume,src=db", "give target"),
            ("type=tmpfs,src=x,target=/x", "no source"),
            ("type=nfs,target=/x", "unknown type"),
            (
                "type=bind,src=/tmp,target=/x,bind-propagation=shared",
                "not supported",
            ),
            ("type=volume,target=/x,tmpfs-size=1m", "type=tmpfs only"),
            (
                "type=volume,target=/x,volume-driver=nfs",
                "local volume driver",
            ),
            ("type=volume,target=/x,colour=red", "unknown key"),
            ("type=volume,target=/x,ro=maybe", "true or false"),
            ("type=volume,\"target=/x", "not closed"),
        ];
        for (spec, message) in errors {
            let err = format!("{:#}", parse_mount(spec, Path::new("/")).unwrap_err());
            assert!(err.contains(message), "{spec}: {err}");
        }
    }
}
