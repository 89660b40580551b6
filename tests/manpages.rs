//! rocker's man pages, as `contrib/man/generate.sh` makes them: checked
//! on the host only (no rocker is run, so the systemd VM has nothing to
//! add).

/// Man pages as `contrib/man/mangen.rs` writes them (clap_mangen over the
/// command line's definition): a page for rocker and for each verb, in
/// roff that `man` renders, with the flags `--help` has.
#[test]
fn man_pages_cover_every_verb_and_render() {
    use clap::CommandFactory;
    let out = std::env::temp_dir().join(format!("rocker-man-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    clap_mangen::generate_to(rocker::cli::args::Cli::command(), &out).unwrap();
    for page in [
        "rocker.1",
        "rocker-run.1",
        "rocker-volume-create.1",
        "rocker-system-prune.1",
    ] {
        let text = std::fs::read_to_string(out.join(page)).unwrap_or_else(|_| panic!("no {page}"));
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text}"
        );
    }
    let run = std::fs::read_to_string(out.join("rocker-run.1")).unwrap();
    for flag in ["volume", "mount", "group\\-add", "stop\\-timeout"] {
        assert!(run.contains(flag), "rocker-run.1 lacks {flag}");
    }
    assert!(
        std::path::Path::new("/usr/bin/man").exists(),
        "/usr/bin/man is missing: install it with `apt-get install man-db`"
    );
    let rendered = std::process::Command::new("man")
        .arg("-l")
        .arg(out.join("rocker-run.1"))
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        text.contains("SYNOPSIS") && text.contains("--volume"),
        "{text}"
    );
    std::fs::remove_dir_all(&out).unwrap();
}
