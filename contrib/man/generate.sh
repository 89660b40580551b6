#!/bin/sh
# Writes rocker's man pages (rocker.1, rocker-run.1, ...) into DIR
# (default: ./man), for `man -l DIR/rocker-run.1` or to install under
# ~/.local/share/man/man1.
set -eu
out=$(realpath -m "${1:-man}")
cd "$(dirname "$0")/../.."
cargo run --quiet --release --example mangen -- "$out"
