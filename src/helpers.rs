//! The helper processes rocker starts beside a container (fuse-overlayfs,
//! slirp4netns): what stopping one means.

use std::process::Child;
use std::time::{Duration, Instant};

/// Waits up to `deadline` for `child`, already asked to exit, then kills
/// it; always reaps, so no zombie stays. It is our own unreaped child, so
/// its pid cannot have been reused meanwhile.
pub fn wait_or_kill(child: &mut Child, deadline: Duration) {
    let start = Instant::now();
    while matches!(child.try_wait(), Ok(None)) {
        if start.elapsed() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let _ = child.wait();
}
