//! The `rocker` binary: everything lives in the library; this only hands
//! over the exit status.

fn main() {
    std::process::exit(rocker::main());
}
