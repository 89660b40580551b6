//! The shape of `src/`, checked: each top-level module imports only the
//! layers below it (so no two folders import each other), and no file but
//! `sys.rs` holds `unsafe`. The layers are those of lib.rs's module map.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top to bottom; a module may import those on lower lines and its own.
const LAYERS: &[&[&str]] = &[
    &["commands"],
    &["build"],
    &["runtime"],
    &["container"],
    &["rootfs", "cli"],
    &["spec"],
    &["image", "cgroups", "network", "volume"],
    &["host"],
    &["util"],
    &["error", "sys"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level module a file under src/ belongs to (`runtime` for
/// src/runtime/init.rs, `spec` for src/spec.rs); None for lib.rs and main.rs.
fn module_of(file: &Path) -> Option<String> {
    let relative = file.strip_prefix(src()).unwrap();
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// Code without comments: `//` to the end of the line (doc comments too).
/// A `//` inside a string literal would cut the line short, which only
/// hides imports, never invents them.
fn without_comments(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `code` names through `crate::`, including those in
/// `use crate::{a, b::c}` groups.
fn modules_named(code: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    named.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            named.insert(name);
        }
    }
    named
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let mut files = vec![];
    rust_files(&src(), &mut files);
    let mut wrong = vec![];
    for file in &files {
        let Some(module) = module_of(file) else {
            continue;
        };
        let own = layer_of(&module)
            .unwrap_or_else(|| panic!("{module} (from {}) is in no layer", file.display()));
        let code = without_comments(&std::fs::read_to_string(file).unwrap());
        for named in modules_named(&code) {
            let Some(layer) = layer_of(&named) else {
                continue; // a name in the crate's root (`crate::main`)
            };
            if named != module && layer <= own {
                wrong.push(format!("{} imports {named}", file.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn unsafe_lives_in_sys_alone() {
    let mut files = vec![];
    rust_files(&src(), &mut files);
    let holders: Vec<String> = files
        .iter()
        .filter(|file| !file.ends_with("sys.rs"))
        .filter(|file| {
            let code = without_comments(&std::fs::read_to_string(file).unwrap());
            code.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                .any(|word| word == "unsafe")
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(holders.is_empty(), "unsafe outside sys.rs: {holders:?}");
}

#[test]
fn the_checker_sees_grouped_and_plain_imports() {
    let code = "use crate::{runtime, image::store};\nlet x = crate::util::fs::remove_tree(p);";
    let named: Vec<String> = modules_named(code).into_iter().collect();
    assert_eq!(named, ["image", "runtime", "util"]);
    assert_eq!(without_comments("a // crate::x\nb"), "a \nb");
}
