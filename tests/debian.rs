//! A real distribution (debootstrap'd Debian) runs: dynamic glibc binaries,
//! dpkg's database, names from its own /etc/passwd.

mod common;

use std::time::Duration;

use common::*;

fn run_debian(args: &[&str]) -> std::process::Output {
    let h = harness();
    let mut command = h.rocker();
    command
        .args(["run", "--rootfs"])
        .arg(h.debian_rootfs())
        .args(args);
    output_within(command, Duration::from_secs(120))
}

#[test]
fn debian_runs_with_its_package_database() {
    let out = ok(run_debian(&[
        "sh",
        "-c",
        ". /etc/os-release; echo $VERSION_CODENAME; dpkg -l | grep -c '^ii'; \
         apt-get --version | head -1; dpkg-query -W -f='${Status}\\n' bash",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bookworm", "{out}");
    let installed: u32 = lines[1].parse().unwrap();
    assert!(installed > 50, "only {installed} packages listed: {out}");
    assert!(lines[2].starts_with("apt "), "{out}");
    assert_eq!(lines[3], "install ok installed", "{out}");
}

#[test]
fn debian_users_resolve_by_name() {
    let out = ok(run_debian(&[
        "-u",
        "nobody",
        "sh",
        "-c",
        "id -un; id -u; echo $HOME",
    ]));
    assert_eq!(out, "nobody\n65534\n/nonexistent\n");
    let out = ok(run_debian(&["-u", "daemon:adm", "id"]));
    assert_eq!(out, "uid=1(daemon) gid=4(adm) groups=4(adm)\n");
}
