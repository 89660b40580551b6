//! Writes rocker's man pages into the directory given (default `man`):
//! `rocker.1` and one page per verb (`rocker-run.1`,
//! `rocker-volume-create.1`, ...), from the same clap definition the
//! binary parses, so they never drift from `--help`.

use clap::CommandFactory;

fn main() -> std::io::Result<()> {
    let out = std::env::args().nth(1).unwrap_or_else(|| "man".to_string());
    std::fs::create_dir_all(&out)?;
    let command = rocker::cli::args::Cli::command().version(env!("CARGO_PKG_VERSION"));
    clap_mangen::generate_to(command, &out)?;
    println!("man pages written to {out}");
    Ok(())
}
