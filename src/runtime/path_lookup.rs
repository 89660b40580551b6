//! Finding the container's command the way a shell would, so rocker can tell
//! "not found" (127) from "cannot execute" (126) before it execs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{StatusError, EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND};

/// The default PATH of a container, as docker sets it.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn check_executable(path: &Path, name: &str) -> Result<(), StatusError> {
    let cannot = |why: &str| {
        StatusError::new(
            EXIT_CANNOT_EXECUTE,
            format!("cannot run {name:?} in the container: {why}"),
        )
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Err(cannot("it is a directory")),
        Ok(meta) if meta.permissions().mode() & 0o111 == 0 => Err(cannot("permission denied")),
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(StatusError::new(
            EXIT_NOT_FOUND,
            format!("cannot run {name:?} in the container: no such file or directory"),
        )),
        Err(err) => Err(cannot(&err.to_string())),
    }
}

/// Resolves `name` against `path_var` (a PATH value) in the current root.
pub fn find(name: &str, path_var: &str) -> Result<PathBuf, StatusError> {
    if name.contains('/') {
        check_executable(Path::new(name), name)?;
        return Ok(PathBuf::from(name));
    }
    let mut first_problem = None;
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let candidate = Path::new(dir).join(name);
        match check_executable(&candidate, name) {
            Ok(()) => return Ok(candidate),
            Err(err) if err.status == EXIT_NOT_FOUND => {}
            Err(err) => {
                first_problem.get_or_insert(err);
            }
        }
    }
    Err(first_problem.unwrap_or_else(|| {
        StatusError::new(
            EXIT_NOT_FOUND,
            format!("cannot run {name:?} in the container: executable file not found in $PATH"),
        )
    }))
}

/// The exit status and message for an execve that failed.
pub fn exec_error(name: &str, errno: nix::errno::Errno) -> StatusError {
    let status = match errno {
        nix::errno::Errno::ENOENT => EXIT_NOT_FOUND,
        _ => EXIT_CANNOT_EXECUTE,
    };
    StatusError::new(
        status,
        format!("cannot run {name:?} in the container: {}", errno.desc()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::scratch::ScratchDir;

    #[test]
    fn lookup_table() {
        let dir = ScratchDir::new("path-lookup");
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::create_dir_all(dir.join("sbin/tool")).unwrap();
        let write = |name: &str, mode: u32| {
            let path = dir.join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("bin/run", 0o755);
        write("bin/data", 0o644);
        let path = format!("{0}/sbin:{0}/bin", dir.display());

        assert_eq!(find("run", &path).unwrap(), dir.join("bin/run"));
        let abs = dir.join("bin/run");
        assert_eq!(find(abs.to_str().unwrap(), "").unwrap(), abs);
        // A directory named like the command is not the command.
        assert_eq!(find("tool", &path).unwrap_err().status, EXIT_CANNOT_EXECUTE);
        assert_eq!(find("data", &path).unwrap_err().status, EXIT_CANNOT_EXECUTE);
        assert_eq!(find("missing", &path).unwrap_err().status, EXIT_NOT_FOUND);
        assert_eq!(
            find("/no/such/file", &path).unwrap_err().status,
            EXIT_NOT_FOUND
        );
        let err = find("missing", &path).unwrap_err();
        assert!(
            err.message.contains("not found in $PATH"),
            "{}",
            err.message
        );
    }
}
