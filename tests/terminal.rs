//! `-t`: a real pty on our side, as a user's terminal would be.

mod common;

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use nix::pty::{openpty, Winsize};
use nix::sys::termios::tcgetattr;

/// rocker running on a pty that is its controlling terminal (via
/// `setsid -c`), with everything it writes collected.
struct OnTerminal {
    child: Child,
    master: std::fs::File,
    slave: OwnedFd,
    output: Arc<Mutex<Vec<u8>>>,
}

impl OnTerminal {
    /// `rocker run --rootfs BUSYBOX ARGS...` on the terminal.
    fn start(args: &[&str]) -> OnTerminal {
        let rootfs = harness().rootfs.to_string_lossy().to_string();
        let mut all = vec!["run", "--rootfs", &rootfs];
        all.extend_from_slice(args);
        OnTerminal::rocker(&all)
    }

    /// `rocker ARGS...` on the terminal.
    fn rocker(args: &[&str]) -> OnTerminal {
        OnTerminal::rocker_in(&harness().base.join("data"), args)
    }

    /// `rocker ARGS...` on the terminal, with the data dir `data`.
    fn rocker_in(data: &std::path::Path, args: &[&str]) -> OnTerminal {
        let h = harness();
        let size = Winsize {
            ws_row: 33,
            ws_col: 97,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(&size, None).unwrap();
        let mut command = h.command_as_user("setsid");
        command
            .env("XDG_DATA_HOME", data)
            .arg("-c")
            .arg(&h.binary)
            .args(args);
        command
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave.try_clone().unwrap()));
        let child = command.spawn().unwrap();
        drop(command);
        let master = std::fs::File::from(pty.master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = reader.read(&mut buffer) {
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        OnTerminal {
            child,
            master,
            slave: pty.slave,
            output,
        }
    }

    /// What rocker wrote, without carriage returns: each terminal layer in
    /// cooked mode adds its own before every newline.
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).replace('\r', "")
    }

    fn wait_for(&self, needle: &str) {
        let start = Instant::now();
        while !self.text().contains(needle) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{needle:?} never appeared; got {:?}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn type_bytes(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    fn finish(mut self) -> (i32, String) {
        let status = wait_within(&mut self.child, Duration::from_secs(30));
        // Let the reader catch up with the last bytes.
        std::thread::sleep(Duration::from_millis(100));
        (status.code().expect("rocker was killed"), self.text())
    }
}

#[test]
fn without_i_the_terminal_stays_cooked_and_ctrl_c_is_forwarded() {
    let mut session = OnTerminal::start(&[
        "-t",
        "sh",
        "-c",
        "trap 'echo got-int; exit 5' INT; echo ready; while :; do sleep 0.1; done",
    ]);
    session.wait_for("ready");
    let flags = tcgetattr(&session.slave).unwrap().local_flags;
    assert!(
        flags.contains(nix::sys::termios::LocalFlags::ISIG),
        "raw mode without -i"
    );
    // Our terminal turns Ctrl-C into SIGINT for rocker, which forwards it.
    session.type_bytes(b"\x03");
    let (status, out) = session.finish();
    assert_eq!(status, 5, "{out}");
    assert!(out.contains("got-int"), "{out}");
}

#[test]
fn the_container_gets_its_own_pty_with_our_window_size() {
    let session = OnTerminal::start(&[
        "-t",
        "sh",
        "-c",
        "tty; stty size; echo $TERM; echo console > /dev/console",
    ]);
    let (status, out) = session.finish();
    assert_eq!(status, 0, "{out}");
    // /dev/console is the same pty, as runc gives it.
    assert_eq!(out, "/dev/pts/0\n33 97\nxterm\nconsole\n");
}

#[test]
fn ctrl_c_goes_to_the_container_and_the_terminal_is_restored() {
    let h = harness();
    let _ = h;
    let mut session = OnTerminal::start(&[
        "-it",
        "sh",
        "-c",
        "trap 'echo got-int; exit 3' INT; echo ready; while :; do sleep 0.1; done",
    ]);
    let before = tcgetattr(&session.slave).unwrap();
    session.wait_for("ready");
    // In raw mode Ctrl-C is a byte for the container's terminal, not a
    // signal for rocker.
    let during = tcgetattr(&session.slave).unwrap();
    assert!(
        !during
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ISIG),
        "rocker did not put the terminal in raw mode"
    );
    session.type_bytes(b"\x03");
    let slave = session.slave.try_clone().unwrap();
    let (status, out) = session.finish();
    assert_eq!(status, 3, "{out}");
    assert!(out.contains("got-int"), "{out}");
    let after = tcgetattr(&slave).unwrap();
    assert_eq!(
        before.local_flags, after.local_flags,
        "terminal left in raw mode"
    );
    assert_eq!(before.input_flags, after.input_flags);
}

#[test]
fn window_size_changes_follow_the_callers_terminal() {
    let mut session = OnTerminal::start(&[
        "-it",
        "sh",
        "-c",
        "trap 'stty size' WINCH; trap 'exit 0' INT; echo ready; while :; do sleep 0.1; done",
    ]);
    session.wait_for("ready");
    let slave_path = nix::unistd::ttyname(&session.slave).unwrap();
    let status = std::process::Command::new("stty")
        .arg("-F")
        .arg(&slave_path)
        .args(["rows", "40", "cols", "100"])
        .status()
        .unwrap();
    assert!(status.success());
    session.wait_for("40 100");
    session.type_bytes(b"\x03");
    let (status, _) = session.finish();
    assert_eq!(status, 0);
}

#[test]
fn input_typed_on_the_terminal_reaches_the_container() {
    let mut session =
        OnTerminal::start(&["-it", "sh", "-c", "echo ready; read line; echo got:$line"]);
    session.wait_for("ready");
    session.type_bytes(b"typed words\r");
    let (status, out) = session.finish();
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("got:typed words"), "{out}");
}

#[test]
fn tty_works_without_a_terminal_on_our_side() {
    let out = ok(harness().run(&["-t", "sh", "-c", "tty; echo hi"]));
    assert_eq!(out.replace("\r\n", "\n"), "/dev/pts/0\nhi\n");
}

#[test]
fn exec_it_gives_an_interactive_shell_in_a_running_container() {
    let h = harness();
    let rootfs = h.rootfs.to_string_lossy().to_string();
    let name = "terminal-exec";
    let mut run = h.rocker();
    run.args([
        "run",
        "-d",
        "--name",
        name,
        "--network",
        "none",
        "--rootfs",
        &rootfs,
    ]);
    run.args(["sleep", "300"]);
    ok(output_within(run, Duration::from_secs(60)));

    let mut session = OnTerminal::rocker(&["exec", "-it", name, "sh"]);
    session.type_bytes(b"echo $((6 * 7)); tty; exit 3\r");
    let (status, out) = session.finish();
    assert_eq!(status, 3, "{out}");
    assert!(out.contains("\n42\n/dev/pts/"), "{out}");

    let mut rm = h.rocker();
    rm.args(["rm", "-f", name]);
    ok(output_within(rm, Duration::from_secs(60)));
}

/// Without -t the container never holds our terminal: its stdio are pipes
/// the monitor relays (output in order, end of file passed on), so it
/// cannot turn off our echo or resize our window, and its status comes
/// back unchanged.
#[test]
fn without_t_the_terminal_is_relayed_not_handed_over() {
    let mut session = OnTerminal::start(&[
        "-i",
        "sh",
        "-c",
        "for fd in 0 1 2; do test -t $fd && echo holds-our-terminal-$fd; done; \
         stty -echo 2>/dev/null || echo stty-refused; \
         echo first; echo second >&2; echo ready; read line; echo got-$line; exit 7",
    ]);
    session.wait_for("ready");
    let before = tcgetattr(&session.slave).unwrap();
    assert!(
        before
            .local_flags
            .contains(nix::sys::termios::LocalFlags::ECHO),
        "the container turned off our terminal's echo"
    );
    session.type_bytes(b"hello\n");
    let (status, out) = session.finish();
    assert_eq!(status, 7, "{out}");
    assert!(
        !out.contains("holds-our-terminal"),
        "the container got our terminal: {out}"
    );
    assert!(out.contains("stty-refused"), "{out}");
    assert!(out.contains("first\n") && out.contains("second\n"), "{out}");
    assert!(out.contains("got-hello"), "{out}");
}

/// End of file typed on our terminal (Ctrl-D) reaches the container, also
/// through --init's reaper.
#[test]
fn without_t_end_of_file_on_the_terminal_reaches_the_container() {
    let mut session =
        OnTerminal::start(&["-i", "--init", "sh", "-c", "echo ready; cat; echo done-$?"]);
    // The whole line: the shell's echo may write its newline apart, and
    // the terminal's echo of what we type must not land in between.
    session.wait_for("ready\n");
    session.type_bytes(b"typed\n");
    session.wait_for("typed\ntyped");
    session.type_bytes(b"\x04");
    let (status, out) = session.finish();
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("done-0"), "{out}");
}

/// `exec` without -t relays our terminal too.
#[test]
fn exec_without_t_relays_the_terminal_too() {
    let h = harness();
    let rootfs = h.rootfs.to_string_lossy().to_string();
    let mut run = h.rocker();
    run.args([
        "run",
        "-d",
        "--name",
        "relayed",
        "--network",
        "none",
        "--rootfs",
        &rootfs,
        "sleep",
        "600",
    ]);
    ok(output_within(run, Duration::from_secs(30)));
    let session = OnTerminal::rocker(&[
        "exec",
        "-i",
        "relayed",
        "sh",
        "-c",
        "for fd in 0 1 2; do test -t $fd && echo holds-our-terminal-$fd; done; echo checked",
    ]);
    let (status, out) = session.finish();
    let mut rm = h.rocker();
    rm.args(["rm", "-f", "relayed"]);
    ok(output_within(rm, Duration::from_secs(30)));
    assert_eq!(status, 0, "{out}");
    assert!(out.contains("checked"), "{out}");
    assert!(!out.contains("holds-our-terminal"), "{out}");
}

/// `rocker ARGS...` with the data dir `data`, to completion.
fn rocker_in(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut command = harness().rocker_in(data);
    command.args(args);
    output_within(command, Duration::from_secs(60))
}

/// `inspect NAME`'s field at `pointer` (a JSON pointer), as text.
fn inspected(data: &std::path::Path, name: &str, pointer: &str) -> String {
    let list: serde_json::Value =
        serde_json::from_str(&ok(rocker_in(data, &["inspect", name]))).unwrap();
    list[0]
        .pointer(pointer)
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

fn status_of(data: &std::path::Path, name: &str) -> String {
    inspected(data, name, "/State/Status")
}

#[test]
fn attach_to_a_dit_shell_takes_typing_and_detaches_with_ctrl_p_ctrl_q() {
    let h = harness();
    let data = h.scratch("terminal-attach");
    let rootfs = h.rootfs.to_string_lossy().to_string();
    ok(rocker_in(
        &data,
        &[
            "run",
            "-dit",
            "--name",
            "box",
            "--network",
            "none",
            "--rootfs",
            &rootfs,
            "sh",
        ],
    ));
    let mut session = OnTerminal::rocker_in(&data, &["attach", "box"]);
    // The container's terminal takes our size, and what we type.
    session.type_bytes(b"echo answer=$((6*7)); stty size\r");
    session.wait_for("answer=42");
    session.wait_for("33 97");
    // Raw mode while attached: Ctrl-C is the container's, not ours.
    let during = tcgetattr(&session.slave).unwrap();
    assert!(!during
        .local_flags
        .contains(nix::sys::termios::LocalFlags::ISIG));
    session.type_bytes(&[0x10, 0x11]);
    let slave = session.slave.try_clone().unwrap();
    let (status, out) = session.finish();
    assert_eq!(status, 1, "docker's status for a detach: {out}");
    assert!(out.contains("read escape sequence"), "{out}");
    assert!(tcgetattr(&slave)
        .unwrap()
        .local_flags
        .contains(nix::sys::termios::LocalFlags::ISIG));
    assert_eq!(status_of(&data, "box"), "running");

    // Other keys, set with --detach-keys; a Ctrl-P alone now goes in.
    let mut session = OnTerminal::rocker_in(&data, &["attach", "--detach-keys", "ctrl-x,x", "box"]);
    session.type_bytes(b"echo still-$((1+1))\r");
    session.wait_for("still-2");
    session.type_bytes(&[0x18, b'x']);
    let (status, _) = session.finish();
    assert_eq!(status, 1);
    assert_eq!(status_of(&data, "box"), "running");

    // The shell's exit ends the attach with its status; the log kept it all.
    let mut session = OnTerminal::rocker_in(&data, &["attach", "box"]);
    session.type_bytes(b"exit 3\r");
    let (status, out) = session.finish();
    assert_eq!(status, 3, "{out}");
    let logs = ok(rocker_in(&data, &["logs", "box"]));
    assert!(
        logs.contains("answer=42") && logs.contains("still-2"),
        "{logs}"
    );
    assert_eq!(status_of(&data, "box"), "exited");

    // A -t container starts again in the background, on a new terminal.
    ok(rocker_in(&data, &["start", "box"]));
    let mut session = OnTerminal::rocker_in(&data, &["start", "-ai", "box"]);
    session.type_bytes(b"tty; exit 4\r");
    let (status, out) = session.finish();
    assert_eq!(status, 4, "{out}");
    assert!(out.contains("/dev/pts/0"), "{out}");
    let id = inspected(&data, "box", "/Id");
    ok(rocker_in(&data, &["rm", "-f", "box"]));
    let live = h.base.join("run/rocker/containers").join(id.trim());
    assert!(
        !live.exists(),
        "{} (and its attach socket) stayed",
        live.display()
    );
}
