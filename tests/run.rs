//! `rocker run --rootfs`: the real binary in real namespaces, as an
//! unprivileged user (see common/mod.rs).

mod common;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn echo_prints_to_the_callers_stdout() {
    assert_eq!(
        ok(harness().run(&["echo", "hello", "world"])),
        "hello world\n"
    );
}

#[test]
fn exit_statuses_follow_docker() {
    let h = harness();
    let cases: &[(&[&str], i32, &str)] = &[
        (&["true"], 0, ""),
        (&["sh", "-c", "exit 42"], 42, ""),
        (&["/etc/passwd"], 126, "permission denied"),
        (&["/etc"], 126, "is a directory"),
        (
            &["no-such-command"],
            127,
            "executable file not found in $PATH",
        ),
        (&["/no/such/file"], 127, "no such file or directory"),
        (&["sh", "-c", "kill -TERM $$"], 0, ""),
    ];
    for (args, want, message) in cases {
        let output = h.run(args);
        assert_eq!(code(&output), *want, "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn a_process_killed_from_outside_gives_137() {
    let h = harness();
    let mut command = h.rocker();
    command
        .args(["run", "--rootfs"])
        .arg(&h.rootfs)
        .args(["sleep", "3137"]);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    let pid = wait_for_process("sleep 3137", Duration::from_secs(20));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let output = wait_output(child, Duration::from_secs(20));
    assert_eq!(code(&output), 137, "{}", stderr(&output));
}

#[test]
fn init_reports_a_command_that_killed_itself() {
    // Without --init the command is PID 1, which cannot be killed from
    // inside its namespace; with it, the command is PID 2.
    let output = harness().run(&["--init", "sh", "-c", "echo pid=$$; kill -9 $$"]);
    assert_eq!(code(&output), 137, "{}", stderr(&output));
    assert_eq!(stdout(&output), "pid=2\n");
}

#[test]
fn rocker_failures_exit_125_with_a_message() {
    let h = harness();
    let missing_source = h.base.join("no-such-volume-source");
    let missing = format!("{}:/data", missing_source.display());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["-e".into(), "=x".into(), "true".into()],
            "invalid environment variable",
        ),
        (
            vec!["-v".into(), "not a name:/x".into(), "true".into()],
            "volume name",
        ),
        (vec!["-v".into(), missing, "true".into()], "does not exist"),
        (vec!["--bogus-flag".into(), "true".into()], "--bogus-flag"),
        (
            vec!["-w".into(), "/etc/passwd".into(), "true".into()],
            "working directory /etc/passwd",
        ),
        (
            vec!["-u".into(), "nobody-here".into(), "true".into()],
            "/etc/passwd",
        ),
        (vec![], "no command given"),
    ];
    for (args, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = h.run(&args);
        assert_eq!(code(&output), 125, "{args:?}: {}", stderr(&output));
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
    }
    let mut command = h.rocker();
    command.args(["run", "--rootfs", "/no/such/rootfs", "true"]);
    let output = output_within(command, Duration::from_secs(20));
    assert_eq!(code(&output), 125);
    assert!(stderr(&output).contains("the rootfs /no/such/rootfs does not exist"));
}

#[test]
fn the_caller_becomes_root_or_the_user_asked_for() {
    let h = harness();
    let map = ok(h.run(&["cat", "/proc/self/uid_map"]));
    let fields: Vec<&str> = map.split_whitespace().collect();
    assert_eq!(fields, vec!["0", &h.uid.to_string(), "1"]);
    assert_eq!(ok(h.run(&["id", "-u"])), "0\n");
    assert_eq!(
        ok(h.run(&["-u", "1000:1000", "sh", "-c", "id -u; id -g"])),
        "1000\n1000\n"
    );
    assert_eq!(
        ok(h.run(&["-u", "app", "sh", "-c", "id -un; echo $HOME"])),
        "app\n/home/app\n"
    );
    assert_eq!(ok(h.run(&["-u", "app:staff", "id", "-g"])), "50\n");
    assert_eq!(
        ok(h.run(&["-u", "4242", "sh", "-c", "id -u; id -g; echo $HOME"])),
        "4242\n0\n/\n"
    );
}

#[test]
fn only_the_containers_processes_are_visible() {
    // The glob expands in the shell before ls starts: the shell alone.
    let out = ok(harness().run(&["sh", "-c", "echo $$; echo /proc/[0-9]*"]));
    assert_eq!(out, "1\n/proc/1\n");
}

#[test]
fn hostname_is_the_short_id_or_the_one_given() {
    let h = harness();
    let out = ok(h.run(&["hostname"]));
    let name = out.trim();
    assert_eq!(name.len(), 12, "{name}");
    assert!(name.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    let out = ok(h.run(&[
        "--hostname",
        "box",
        "sh",
        "-c",
        "hostname; cat /etc/hostname; grep box /etc/hosts; echo $HOSTNAME",
    ]));
    // Behind slirp4netns (the default) the name is the container's address.
    assert_eq!(out, "box\nbox\n10.0.2.100\tbox\nbox\n");
}

#[test]
fn stdin_reaches_the_container_only_with_i() {
    let h = harness();
    let mut command = h.rocker();
    command
        .args(["run", "-i", "--rootfs"])
        .arg(&h.rootfs)
        .args(["sh", "-c", "cat; echo end"]);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped line\n")
        .unwrap();
    let output = wait_output(child, Duration::from_secs(30));
    assert_eq!(stdout(&output), "piped line\nend\n", "{}", stderr(&output));

    let mut command = h.rocker();
    command
        .args(["run", "--rootfs"])
        .arg(&h.rootfs)
        .args(["sh", "-c", "cat; echo end"]);
    command.stdin(Stdio::piped());
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Without -i the container reads /dev/null, even while ours stays open.
    let _keep_open = child.stdin.take();
    let output = wait_output(child, Duration::from_secs(30));
    assert_eq!(stdout(&output), "end\n");
}

#[test]
fn env_workdir_and_entrypoint() {
    let h = harness();
    let env_file = h.base.join("test.env");
    std::fs::write(&env_file, "# a comment\nFROM_FILE=file\nBOTH=file\n").unwrap();
    let out = ok(h.run(&[
        "--env-file",
        env_file.to_str().unwrap(),
        "-e",
        "BOTH=flag",
        "-e",
        "EMPTY=",
        "-e",
        "SPACES=a b",
        "sh",
        "-c",
        "echo $FROM_FILE $BOTH [$EMPTY] $SPACES; echo $PATH; echo $HOME",
    ]));
    assert_eq!(
        out,
        "file flag [] a b\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n/root\n"
    );
    assert_eq!(ok(h.run(&["-w", "/tmp", "pwd"])), "/tmp\n");
    // docker creates a missing working directory.
    assert_eq!(ok(h.run(&["-w", "/new/dir", "pwd"])), "/new/dir\n");
    assert_eq!(
        ok(h.run(&["--entrypoint", "echo", "from", "entrypoint"])),
        "from entrypoint\n"
    );
    assert_eq!(
        ok(h.run(&["--entrypoint", "", "echo", "cleared"])),
        "cleared\n"
    );
}

#[test]
fn volumes_read_write_and_read_only() {
    let h = harness();
    let dir = h.scratch("volumes");
    std::fs::write(dir.join("from-host"), "host data\n").unwrap();
    h.give(&dir.join("from-host"));
    let rw = format!("{}:/data", dir.display());
    let out = ok(h.run(&[
        "-v",
        &rw,
        "sh",
        "-c",
        "cat /data/from-host; echo written > /data/new",
    ]));
    assert_eq!(out, "host data\n");
    let meta = std::fs::metadata(dir.join("new")).unwrap();
    assert_eq!(
        meta.uid(),
        h.uid,
        "a file written in a volume belongs to the caller"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("new")).unwrap(),
        "written\n"
    );

    let ro = format!("{}:/data:ro", dir.display());
    let output = h.run(&[
        "-v",
        &ro,
        "sh",
        "-c",
        "cat /data/from-host; touch /data/denied",
    ]);
    assert_ne!(code(&output), 0);
    assert_eq!(stdout(&output), "host data\n");
    assert!(
        stderr(&output).contains("Read-only file system"),
        "{}",
        stderr(&output)
    );
    assert!(!dir.join("denied").exists());

    // A destination inside a path that does not exist yet is created.
    let nested = format!("{}:/deep/inside/data", dir.display());
    assert_eq!(
        ok(h.run(&["-v", &nested, "cat", "/deep/inside/data/from-host"])),
        "host data\n"
    );
}

#[test]
fn read_only_root_and_tmpfs() {
    let h = harness();
    let output = h.run(&["--read-only", "touch", "/should-fail"]);
    assert_ne!(code(&output), 0);
    assert!(
        stderr(&output).contains("Read-only file system"),
        "{}",
        stderr(&output)
    );
    assert!(!h.rootfs.join("should-fail").exists());

    let out = ok(h.run(&[
        "--read-only",
        "--tmpfs",
        "/scratch",
        "--tmpfs",
        "/sized:size=1m,mode=700",
        "sh",
        "-c",
        "echo ok > /scratch/f && cat /scratch/f; grep -E ' /(scratch|sized) ' /proc/mounts",
    ]));
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("ok"));
    let scratch = lines.next().unwrap();
    assert!(
        scratch.starts_with("tmpfs /scratch tmpfs rw,nosuid,nodev,noexec"),
        "{scratch}"
    );
    let sized = lines.next().unwrap();
    assert!(
        sized.contains("size=1024k") && sized.contains("mode=700"),
        "{sized}"
    );
}

#[test]
fn proc_and_sys_are_masked_and_read_only() {
    let h = harness();
    let script = "for f in /proc/kcore /proc/keys /proc/timer_list; do \
                    [ -e $f ] && echo $f $(wc -c < $f); done; \
                  ls /sys/firmware | wc -l; \
                  echo 1 > /proc/sys/kernel/hostname 2>/dev/null && echo proc-sys-writable; \
                  touch /sys/x 2>/dev/null && echo sys-writable; \
                  grep ' /sys ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1";
    let out = ok(h.run(&["sh", "-c", script]));
    let lines: Vec<&str> = out.lines().collect();
    for line in &lines[..lines.len() - 2] {
        assert!(line.ends_with(" 0"), "a masked file has content: {line}");
    }
    assert!(out.contains("/proc/keys 0"), "{out}");
    assert_eq!(&lines[lines.len() - 2..], &["0", "ro"], "{out}");
}

#[test]
fn generated_etc_files_leave_the_rootfs_untouched() {
    let h = harness();
    let root = h.rootfs_copy("etc-files");
    let mut command = h.rocker();
    command
        .args(["run", "--hostname", "web", "--rootfs"])
        .arg(&root)
        .args([
            "sh",
            "-c",
            "cat /etc/hosts; echo --; cat /etc/hostname; echo changed >> /etc/hosts",
        ]);
    let out = ok(output_within(command, Duration::from_secs(30)));
    assert!(out.starts_with("127.0.0.1\tlocalhost\n"), "{out}");
    assert!(out.contains("10.0.2.100\tweb\n--\nweb\n"), "{out}");
    for file in ["hosts", "hostname", "resolv.conf"] {
        let content = std::fs::read_to_string(root.join("etc").join(file)).unwrap();
        assert_eq!(content, "", "/etc/{file} of the rootfs was modified");
    }
}

#[test]
fn inspect_names_the_generated_etc_files_as_the_container_has_them() {
    // rocker writes these copies after the container is cloned, while it
    // sets up: they must be there once `run -d` has returned.
    let h = harness();
    let data = h.scratch("etc-paths-data");
    let rootfs = h.rootfs.to_string_lossy().to_string();
    let in_data = |args: &[&str]| {
        let mut command = h.rocker_in(&data);
        command.args(args);
        ok(output_within(command, Duration::from_secs(60)))
    };
    in_data(&[
        "run",
        "-d",
        "--name",
        "paths",
        "--hostname",
        "web",
        "--network",
        "none",
        "--rootfs",
        &rootfs,
        "sleep",
        "600",
    ]);
    for (field, file) in [
        ("HostsPath", "/etc/hosts"),
        ("HostnamePath", "/etc/hostname"),
        ("ResolvConfPath", "/etc/resolv.conf"),
    ] {
        let path = in_data(&["inspect", "-f", &format!("{{{{.{field}}}}}"), "paths"]);
        let on_host = std::fs::read_to_string(path.trim())
            .unwrap_or_else(|err| panic!("{field} {}: {err}", path.trim()));
        let inside = in_data(&["exec", "paths", "cat", file]);
        assert_eq!(on_host, inside, "{field}");
    }
    in_data(&["rm", "-f", "paths"]);
}

#[test]
fn nothing_is_left_behind() {
    let h = harness();
    let runtime = h.scratch("leftover-runtime");
    let mounts_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for (args, status) in [
        (
            vec!["sh", "-c", "sleep 3141 & sleep 3142 & echo started"],
            0,
        ),
        (vec!["sh", "-c", "sleep 3143 & exit 3"], 3),
        (vec!["--init", "sh", "-c", "sleep 3144 & exit 4"], 4),
        (vec!["no-such-command"], 127),
    ] {
        let mut command = h.rocker_with_runtime(&runtime);
        command.args(["run", "--rootfs"]).arg(&h.rootfs).args(&args);
        let output = output_within(command, Duration::from_secs(30));
        // Each ran (or failed) as it should: a run that failed early would
        // leave nothing for the wrong reason.
        assert_eq!(code(&output), status, "{args:?}: {}", stderr(&output));
    }
    for marker in ["sleep 3141", "sleep 3142", "sleep 3143", "sleep 3144"] {
        assert_eq!(
            processes_with(marker),
            Vec::<u32>::new(),
            "{marker} survived"
        );
    }
    let mounts_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert_eq!(
        mounts_before, mounts_after,
        "mounts changed in the caller's namespace"
    );
    let left: Vec<_> = std::fs::read_dir(runtime.join("rocker/containers"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "live dirs left: {left:?}");
}

#[test]
fn killing_rocker_kills_the_container() {
    let h = harness();
    for (init, marker) in [(false, "sleep 3161"), (true, "sleep 3162")] {
        let mut command = h.rocker();
        command.args(["run", "--rootfs"]).arg(&h.rootfs);
        if init {
            command.arg("--init");
        }
        command.args(["sh", "-c", &format!("{marker} & {marker}0")]);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().unwrap();
        wait_for_process(marker, Duration::from_secs(20));
        child.kill().unwrap();
        child.wait().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !processes_with(marker).is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "{marker} outlived rocker"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn twenty_runs_in_parallel() {
    let h = harness();
    let children: Vec<_> = (0..20)
        .map(|i| {
            let mut command = h.rocker();
            command.args(["run", "--rootfs"]).arg(&h.rootfs).args([
                "sh",
                "-c",
                &format!("echo run-{i} $$"),
            ]);
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
            command.spawn().unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let output = wait_output(child, Duration::from_secs(120));
        assert_eq!(
            stdout(&output),
            format!("run-{i} 1\n"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn signals_sent_to_rocker_reach_the_container() {
    let h = harness();
    let run = |args: &[&str], marker: &str| {
        let mut command = h.rocker();
        command.args(["run", "--rootfs"]).arg(&h.rootfs).args(args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = command.spawn().unwrap();
        wait_for_process(marker, Duration::from_secs(20));
        // The container's command is up; now signal rocker itself.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        wait_output(child, Duration::from_secs(20))
    };
    // A PID 1 with a handler gets the signal.
    let output = run(
        // (sh runs a trap only between commands, so the marker runs behind.)
        &[
            "sh",
            "-c",
            "trap 'echo got-term; exit 7' TERM; sleep 3151 & while :; do sleep 0.1; done",
        ],
        "sleep 3151",
    );
    assert_eq!(code(&output), 7, "{}", stderr(&output));
    assert_eq!(stdout(&output), "got-term\n");
    // Under --init, a command without handlers dies of it, as outside.
    let output = run(&["--init", "sleep", "3152"], "sleep 3152");
    assert_eq!(code(&output), 143, "{}", stderr(&output));
}

#[test]
fn capabilities_are_podmans_default_set() {
    let out = ok(harness().run(&["grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status"]));
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE SYS_CHROOT SETFCAP
    let want = "CapInh:\t0000000000000000\nCapPrm:\t00000000800405fb\n\
                CapEff:\t00000000800405fb\nCapBnd:\t00000000800405fb\n\
                CapAmb:\t0000000000000000\nNoNewPrivs:\t1\n";
    assert_eq!(out, want);
    // Another user keeps no effective capability, as under docker.
    let out = ok(harness().run(&["-u", "1000", "grep", "CapEff", "/proc/self/status"]));
    assert_eq!(out, "CapEff:\t0000000000000000\n");
}

#[test]
fn network_none_has_loopback_up_and_host_shares_ours() {
    let h = harness();
    let out = ok(h.run(&[
        "--network",
        "none",
        "sh",
        "-c",
        "ls /sys/class/net; cat /sys/class/net/lo/operstate; ip -o link show lo",
    ]));
    assert!(out.starts_with("lo\n"), "only lo expected: {out}");
    assert!(out.contains("UP"), "{out}");
    let host_links = std::fs::read_dir("/sys/class/net").unwrap().count();
    let out = ok(h.run(&["--network", "host", "ls", "/sys/class/net"]));
    assert_eq!(out.lines().count(), host_links, "{out}");
}

/// What the command starts with whatever the caller had: umask 0022, the
/// caller's hard limit of open files as its soft one, and no /dev/console
/// without -t.
#[test]
fn the_process_gets_runcs_defaults_not_the_callers() {
    let h = harness();
    let mut command = h.command_as_user("/bin/sh");
    command
        .args([
            "-c",
            "umask 000; ulimit -Sn 256; ulimit -Su 200; exec \"$0\" \"$@\"",
        ])
        .arg(&h.binary)
        .args(["run", "--rm", "--network", "none", "--rootfs"])
        .arg(&h.rootfs)
        .args([
            "sh",
            "-c",
            "umask; test $(ulimit -n) = $(ulimit -Hn) && test $(ulimit -u) = $(ulimit -Hu) \
             && echo raised; test -e /dev/console || echo no-console",
        ]);
    let out = ok(output_within(command, Duration::from_secs(30)));
    assert_eq!(out, "0022\nraised\nno-console\n", "{out}");
}

#[test]
fn ctrl_c_during_setup_stops_the_run_cleanly() {
    let h = harness();
    // A slirp4netns that never says it is ready: setup waits on it.
    let path = h.path_with_script(
        "stuck-slirp-bin",
        "slirp4netns",
        "#!/bin/sh\ncase \"$1\" in --help) exit 0;; esac\nexec sleep 1033\n",
    );
    let data = h.scratch("stuck-slirp-data");
    let mut command = h.rocker_in(&data);
    command
        .env("PATH", path)
        .args(["run", "--name", "stuck", "--rootfs"])
        .arg(&h.rootfs)
        .arg("true");
    let run = spawn_collecting(command);
    wait_for_process("sleep 1033", Duration::from_secs(30));
    let start = std::time::Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = wait_output(run, Duration::from_secs(30));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(code(&output), 130, "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted by SIGINT"),
        "{}",
        stderr(&output)
    );
    // Nothing left: no helper, no container, no record.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !processes_with("sleep 1033").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the helper was left running"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut ps = h.rocker_in(&data);
    ps.args(["ps", "-aq"]);
    assert_eq!(ok(output_within(ps, Duration::from_secs(30))), "");
}

#[test]
fn boolean_flags_take_docker_values_and_no_verb_is_suggested() {
    let h = harness();
    let out = h.run(&[
        "--rm=true",
        "--tty=false",
        "--interactive=false",
        "--network",
        "none",
        "echo",
        "ok",
    ]);
    assert_eq!(stdout(&out), "ok\n", "{}", stderr(&out));
    // --detach=false runs in the foreground; a flag alone is true.
    let out = h.run(&[
        "--rm",
        "--detach=false",
        "--network",
        "none",
        "sh",
        "-c",
        "exit 4",
    ]);
    assert_eq!(code(&out), 4);
    let out = h.run(&["--rm=maybe", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("not a boolean"), "{}", stderr(&out));
    // An unknown verb is named, and nothing similar is proposed.
    let mut command = h.rocker();
    command.args(["stp", "web"]);
    let out = output_within(command, Duration::from_secs(30));
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("unrecognized subcommand 'stp'"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("stop"), "{}", stderr(&out));
}

#[test]
fn names_shm_size_and_ulimits_as_docker_sets_them() {
    let h = harness();
    let out = h.run(&[
        "--rm",
        "--network",
        "none",
        "--add-host",
        "db:10.1.2.3",
        "--dns",
        "9.9.9.9",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "ndots:2",
        "--shm-size",
        "8m",
        "--ulimit",
        "nofile=100:200",
        "sh",
        "-c",
        "grep -w db /etc/hosts; grep -v '^#' /etc/resolv.conf; df -k /dev/shm | tail -1 | awk '{print $2}'; \
         ulimit -Sn; ulimit -Hn",
    ]);
    assert_eq!(
        stdout(&out),
        "10.1.2.3\tdb\nnameserver 9.9.9.9\nsearch corp.example\noptions ndots:2\n8192\n100\n200\n",
        "{}",
        stderr(&out)
    );
    // A hard limit goes down, never up: said, with the caller's limit.
    let out = h.run(&[
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=1:4000000000",
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("may lower a hard limit"),
        "{}",
        stderr(&out)
    );
    let out = h.run(&["--rm", "--add-host", "bad", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("NAME:ADDRESS"), "{}", stderr(&out));
}

#[test]
fn devices_are_bound_in_and_nothing_else_passes_for_one() {
    let h = harness();
    let out = h.run(&[
        "--rm",
        "--network",
        "none",
        "--device",
        "/dev/null:/dev/other-null",
        "sh",
        "-c",
        "test -c /dev/other-null && echo char && echo x > /dev/other-null && echo written",
    ]);
    assert_eq!(stdout(&out), "char\nwritten\n", "{}", stderr(&out));
    let out = h.run(&["--rm", "--device", "/etc/passwd", "true"]);
    assert_eq!(code(&out), 125);
    assert!(
        stderr(&out).contains("not a device node"),
        "{}",
        stderr(&out)
    );
    let out = h.run(&["--rm", "--device", "/dev/null:/dev/x:rwz", "true"]);
    assert_eq!(code(&out), 125);
}

#[test]
fn sysctls_of_the_containers_own_namespaces_only() {
    let h = harness();
    let out = h.run(&[
        "--rm",
        "--network",
        "none",
        "--sysctl",
        "net.ipv4.ip_unprivileged_port_start=80",
        "--sysctl",
        "kernel.shmmax=1000000",
        "cat",
        "/proc/sys/net/ipv4/ip_unprivileged_port_start",
        "/proc/sys/kernel/shmmax",
    ]);
    assert_eq!(stdout(&out), "80\n1000000\n", "{}", stderr(&out));
    // The host's own settings are refused before anything starts: a
    // kernel one, and a network one on the host's network.
    for args in [
        &["--rm", "--sysctl", "kernel.pid_max=100", "true"][..],
        &[
            "--rm",
            "--network",
            "host",
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "true",
        ][..],
    ] {
        let out = h.run(args);
        assert_eq!(code(&out), 125);
        assert!(
            stderr(&out).contains("it would be the host's"),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn ipc_and_uts_host_share_the_callers_namespaces() {
    let h = harness();
    let ns = |kind: &str| {
        std::fs::read_link(format!("/proc/self/ns/{kind}"))
            .unwrap()
            .display()
            .to_string()
    };
    let hostname = nix::unistd::gethostname().unwrap();
    let hostname = hostname.to_string_lossy();
    let script = "readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; hostname; \
                  cat /etc/hostname; grep -c ' /dev/shm ' /proc/mounts";
    let out = h.run(&[
        "--rm",
        "--network",
        "none",
        "--ipc",
        "host",
        "--uts",
        "host",
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(
        stdout(&out),
        format!("{}\n{}\n{hostname}\n{hostname}\n1\n", ns("ipc"), ns("uts")),
        "{}",
        stderr(&out)
    );
    // Their own, by default and with the explicit words.
    let out = h.run(&[
        "--rm",
        "--network",
        "none",
        "--ipc",
        "private",
        "--uts",
        "",
        "sh",
        "-c",
        script,
    ]);
    let lines: Vec<String> = stdout(&out).lines().map(String::from).collect();
    assert_eq!(lines.len(), 5, "{}", stderr(&out));
    assert!(lines[0] != ns("ipc") && lines[1] != ns("uts"), "{lines:?}");
    // What cannot go with them is refused before anything starts.
    for (args, message) in [
        (&["--uts", "host", "-h", "box", "true"][..], "conflict"),
        (
            &["--ipc", "host", "--shm-size", "1m", "true"][..],
            "conflict",
        ),
        (
            &["--ipc", "host", "--sysctl", "kernel.shmmax=1", "true"][..],
            "the host's",
        ),
        (&["--ipc", "container:web", "true"][..], "not supported"),
    ] {
        let mut all = vec!["--rm", "--network", "none"];
        all.extend_from_slice(args);
        let out = h.run(&all);
        assert_eq!(code(&out), 125, "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn group_add_takes_only_the_containers_own_group_and_oom_kill_disable_warns() {
    let h = harness();
    // The rootfs's /etc/group names root (0): the container's own group.
    let out = h.run(&[
        "--rm",
        "--network",
        "none",
        "--group-add",
        "0",
        "--group-add",
        "root",
        "--group-add",
        "keep-groups",
        "--oom-kill-disable",
        "id",
        "-g",
    ]);
    assert_eq!(stdout(&out), "0\n", "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--oom-kill-disable is ignored"),
        "{}",
        stderr(&out)
    );
    let out = h.run(&["--rm", "--network", "none", "--group-add", "4242", "true"]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("one group id"), "{}", stderr(&out));
    let out = h.run(&[
        "--rm",
        "--network",
        "none",
        "--group-add",
        "no-such-group",
        "true",
    ]);
    assert_eq!(code(&out), 125);
    assert!(stderr(&out).contains("/etc/group"), "{}", stderr(&out));
}

#[test]
fn exposed_ports_show_in_inspect() {
    let h = harness();
    let data = h.scratch("expose-data");
    let rootfs = h.rootfs.to_string_lossy().to_string();
    let mut command = h.rocker_in(&data);
    command.args([
        "run",
        "--name",
        "exposing",
        "--network",
        "none",
        "--expose",
        "80",
        "--expose",
        "53/udp",
        "--rootfs",
        &rootfs,
        "true",
    ]);
    ok(output_within(command, Duration::from_secs(60)));
    let mut command = h.rocker_in(&data);
    command.args(["inspect", "-f", "{{json .Config.ExposedPorts}}", "exposing"]);
    let out = ok(output_within(command, Duration::from_secs(60)));
    assert_eq!(out, "{\"53/udp\":{},\"80/tcp\":{}}\n");
    let out = h.run(&["--rm", "--expose", "http", "true"]);
    assert_eq!(code(&out), 125);
}

#[test]
fn pid_host_sees_the_callers_processes_and_leaves_none_of_its_own() {
    let h = harness();
    let seconds = 100_000 + std::process::id() % 50_000;
    let marker = format!("sleep {seconds}");
    // The test's own pid is visible; a process left running in the
    // background (seen running) is killed when the command ends; the
    // status is kept.
    let script = format!(
        "test -d /proc/{}/ && echo sees-the-host; \
         (sleep {seconds} &); sleep 0.2; ps -o args | grep -q '^{marker}' && echo running; exit 7",
        std::process::id()
    );
    for init in [&[][..], &["--init"][..]] {
        let mut args = vec!["--rm", "--network", "none", "--pid", "host"];
        args.extend_from_slice(init);
        args.extend(["sh", "-c", &script]);
        let out = h.run(&args);
        assert_eq!(code(&out), 7, "{init:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), "sees-the-host\nrunning\n", "{init:?}");
        assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
        assert!(
            processes_with(&marker).is_empty(),
            "{init:?}: {marker} outlived its container"
        );
    }
    // Masked paths still apply to the host's /proc.
    let out = h.run(&[
        "--rm",
        "--network",
        "none",
        "--pid",
        "host",
        "sh",
        "-c",
        "cat /proc/timer_list | wc -c; echo x > /proc/sys/kernel/domainname || echo read-only",
    ]);
    assert_eq!(stdout(&out), "0\nread-only\n", "{}", stderr(&out));
}
