//! Known container escapes, each tried for real against rocker.

mod common;

use std::os::unix::fs::symlink;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use nix::pty::openpty;

#[test]
fn only_stdio_reaches_the_container() {
    // CVE-2024-21626: a descriptor inherited from the caller (or opened by
    // the runtime) must not reach the container.
    let h = harness();
    let mut command = h.command_as_user("/bin/sh");
    command
        .args([
            "-c",
            "exec 7</etc/hostname 8</ 9>/dev/null; exec \"$0\" \"$@\"",
        ])
        .arg(&h.binary)
        .args(["run", "--rootfs"])
        .arg(&h.rootfs)
        // `; true` keeps sh from exec'ing ls in its place: $$ stays the shell.
        .args(["sh", "-c", "ls /proc/$$/fd; true"]);
    let out = ok(output_within(command, Duration::from_secs(30)));
    assert_eq!(out, "0\n1\n2\n");
}

#[test]
fn symlinked_proc_dev_or_dev_null_is_refused() {
    // The CVE-2019-19921 family: a rootfs steering rocker's mounts.
    let h = harness();
    for (name, path, target) in [
        ("proc-link", "proc", "tmp"),
        ("dev-link", "dev", "tmp"),
        ("devnull-link", "dev/null", "/tmp/x"),
    ] {
        let root = h.rootfs_copy(name);
        let full = root.join(path);
        let _ = std::fs::remove_dir_all(&full);
        symlink(target, &full).unwrap();
        h.give_tree(&root);
        let mut command = h.rocker();
        command.args(["run", "--rootfs"]).arg(&root).arg("true");
        let output = output_within(command, Duration::from_secs(30));
        assert_eq!(code(&output), 125, "{name}: {}", stderr(&output));
        let message = format!("the rootfs's /{path} is a symbolic link");
        assert!(
            stderr(&output).contains(&message),
            "{name}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn symlinks_in_the_rootfs_cannot_point_mounts_or_the_workdir_at_the_host() {
    let h = harness();
    let host_dir = h.scratch("escape-target");
    std::fs::write(host_dir.join("host-secret"), "secret").unwrap();
    let root = h.rootfs_copy("escape");
    symlink(&host_dir, root.join("evil")).unwrap();
    h.give_tree(&root);
    let volume = h.scratch("escape-volume");
    std::fs::write(volume.join("payload"), "payload").unwrap();

    let mut command = h.rocker();
    command
        .args(["run", "-v", &format!("{}:/evil/mounted", volume.display())])
        .args(["-w", "/evil", "--rootfs"])
        .arg(&root)
        .args(["sh", "-c", "pwd; ls"]);
    let output = output_within(command, Duration::from_secs(30));
    assert!(
        !stdout(&output).contains("host-secret"),
        "{}",
        stdout(&output)
    );
    // The link was followed inside the rootfs: the host dir is untouched.
    let entries: Vec<_> = std::fs::read_dir(&host_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, vec![std::ffi::OsString::from("host-secret")]);
    assert_eq!(ok(output), format!("{}\nmounted\n", host_dir.display()));
}

#[test]
fn the_container_has_no_controlling_terminal_without_t() {
    // CVE-2017-5226: with the caller's terminal as its controlling
    // terminal, a process could push keystrokes into it with TIOCSTI.
    let h = harness();
    let pty = openpty(None, None).unwrap();
    let mut command = h.command_as_user("setsid");
    command
        .arg("-c")
        .arg(&h.binary)
        .args(["run", "-i", "--rootfs"])
        .arg(&h.rootfs)
        .args(["cat", "/proc/self/stat"])
        .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
        .stderr(Stdio::piped());
    let out = ok(output_within(command, Duration::from_secs(30)));
    // Fields after the command name: state ppid pgrp session tty_nr.
    let fields: Vec<&str> = out.rsplit(')').next().unwrap().split_whitespace().collect();
    assert_eq!(fields[3], "1", "not a session leader: {out}");
    assert_eq!(fields[4], "0", "has a controlling terminal: {out}");
}

#[test]
fn the_rocker_binary_cannot_be_reached_through_proc_exe() {
    // CVE-2019-5736: under --init, PID 1 is rocker's own binary. The copy
    // the harness runs belongs to the same user as the container's root, so
    // only the kernel's ptrace checks stand between them.
    let h = harness();
    let before = std::fs::read(&h.binary).unwrap();
    let out = ok(h.run(&[
        "--init",
        "sh",
        "-c",
        "cat /proc/1/exe >/dev/null 2>&1 && echo init-readable; \
         echo x 2>/dev/null >> /proc/1/exe && echo init-writable; \
         readlink /proc/1/exe >/dev/null 2>&1 && echo init-linkable; \
         cat /proc/self/exe >/dev/null && echo self-readable",
    ]));
    assert_eq!(out, "self-readable\n");
    assert!(
        before == std::fs::read(&h.binary).unwrap(),
        "the binary changed"
    );
}

/// A directory on stdio is a way into the caller's file system
/// (`fchdir(0)`, then `..` up to `/`): refused, naming the descriptor, for
/// `run` (stdin with -i, stdout, stderr) and `exec -i`.
#[test]
fn a_directory_on_stdio_is_refused() {
    let h = harness();
    let data = h.scratch("stdio-dir-data");
    let rootfs = h.rootfs.to_string_lossy().to_string();
    let run = |redirect: &str, args: &str| {
        let mut command = h.command_as_user("/bin/sh");
        command
            .env("XDG_DATA_HOME", &data)
            .args(["-c", &format!("exec \"$0\" {args} {redirect}")])
            .arg(&h.binary);
        output_within(command, Duration::from_secs(30))
    };
    let container = format!("run --rm --network none --rootfs {rootfs} true");
    for (redirect, args, named) in [
        (
            "</",
            format!("run -i --rm --network none --rootfs {rootfs} true"),
            "stdin (fd 0) is a directory",
        ),
        ("1</", container.clone(), "stdout (fd 1) is a directory"),
        ("2</", container.clone(), "stderr (fd 2) is a directory"),
    ] {
        let out = run(redirect, &args);
        assert_eq!(code(&out), 125, "{redirect}: {}", stderr(&out));
        let text = format!("{}{}", stderr(&out), stdout(&out));
        // With stderr itself a directory the message cannot be shown; the
        // status says it.
        if redirect != "2</" {
            assert!(text.contains(named), "{redirect}: {text}");
        }
    }
    // Without -i, stdin is not passed and /dev/null stands in: fine.
    ok(run("</", &container));

    ok(run(
        "",
        &format!("run -d --name stdio-box --network none --rootfs {rootfs} sleep 600"),
    ));
    let out = run("</", "exec -i stdio-box true");
    assert_eq!(code(&out), 125, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("stdin (fd 0) is a directory"),
        "{}",
        stderr(&out)
    );
    ok(run("", "rm -f stdio-box"));
}

/// `-h` with a newline would inject lines into /etc/hosts: refused. A
/// command or name carrying escape sequences reaches `ps` escaped, not as
/// control sequences to the user's terminal.
#[test]
fn hostnames_cannot_inject_and_tables_escape_control_characters() {
    let h = harness();
    let out = h.run(&["-h", "box\n10.6.6.6 bank.example", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("invalid hostname"),
        "{}",
        stderr(&out)
    );

    let data = h.scratch("escape-data");
    let rootfs = h.rootfs.to_string_lossy().to_string();
    let rocker = |args: &[&str]| {
        let mut command = h.rocker_in(&data);
        command.args(args);
        output_within(command, Duration::from_secs(30))
    };
    ok(rocker(&[
        "run",
        "-d",
        "--name",
        "escaper",
        "--network",
        "none",
        "--rootfs",
        &rootfs,
        "sh",
        "-c",
        "\u{1b}[2J\u{1b}]0;owned\u{7} 2>/dev/null; sleep 600",
    ]));
    let table = ok(rocker(&["ps"]));
    assert!(table.contains("\\u{1b}[2J"), "{table:?}");
    assert!(
        !table.contains('\u{1b}') && !table.contains('\u{7}'),
        "{table:?}"
    );
    ok(rocker(&["rm", "-f", "escaper"]));
}

/// The generated /etc files are the container's to write, within bounds:
/// read-only under --read-only, and too small a tmpfs to fill the runtime
/// dir (which they come from) otherwise.
#[test]
fn generated_etc_files_are_read_only_when_asked_and_capped() {
    let h = harness();
    let out = h.run(&[
        "--read-only",
        "--network",
        "none",
        "sh",
        "-c",
        "echo 10.6.6.6 bank >> /etc/hosts",
    ]);
    assert_ne!(code(&out), 0);
    assert!(
        stderr(&out).contains("Read-only file system"),
        "{}",
        stderr(&out)
    );
    let out = ok(h.run(&[
        "--network",
        "none",
        "sh",
        "-c",
        "echo 10.0.0.9 db >> /etc/hosts && tail -1 /etc/hosts; \
         dd if=/dev/zero of=/etc/resolv.conf bs=1024 count=8192 2>&1 | grep -o 'No space left'; \
         test $(stat -c %s /etc/resolv.conf) -lt 2097152 && echo capped",
    ]));
    assert_eq!(out, "10.0.0.9 db\nNo space left\ncapped\n", "{out}");
}

/// With the host's network the host's /sys is bound, but not its cgroup
/// tree: SECURITY.md says the container cannot see the host's cgroups.
#[test]
fn the_host_network_does_not_show_the_hosts_cgroups() {
    let out = ok(harness().run(&[
        "--network",
        "host",
        "sh",
        "-c",
        "ls -A /sys/fs/cgroup | wc -l; ls /sys/class/net | grep -c .",
    ]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0].trim(), "0", "{out}");
    assert_ne!(
        lines[1].trim(),
        "0",
        "the host's /sys is still there: {out}"
    );
}
