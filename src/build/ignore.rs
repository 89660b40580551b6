//! `.dockerignore` (or `.containerignore`): which context paths a build
//! never reads, with docker's rules. Each line is a pattern (comments
//! with `#`, blank lines skipped, paths cleaned, a leading `/` dropped);
//! `!` makes an exception; the last pattern that matches a path, or a
//! directory above it, decides.

use std::path::Path;

use anyhow::{Context, Result};

use super::pattern;

#[derive(Debug, Clone, Default)]
pub struct Ignore {
    /// (pattern, is an exception), in file order.
    patterns: Vec<(String, bool)>,
}

/// The names docker and podman read, podman's first.
const FILES: &[&str] = &[".containerignore", ".dockerignore"];

impl Ignore {
    /// The context's ignore file, if it has one.
    pub fn of_context(context: &Path) -> Result<Ignore> {
        for name in FILES {
            let path = context.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => return Ok(Ignore::parse(&text)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
            }
        }
        Ok(Ignore::default())
    }

    pub fn parse(text: &str) -> Ignore {
        let patterns = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| {
                let (exception, line) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, line),
                };
                let cleaned = clean(line);
                (!cleaned.is_empty()).then_some((cleaned, exception))
            })
            .collect();
        Ignore { patterns }
    }

    /// Whether the context path `relative` (slash-separated) is excluded.
    pub fn excludes(&self, relative: &str) -> bool {
        let mut excluded = false;
        for (pattern, exception) in &self.patterns {
            if matches_or_parent(pattern, relative) {
                excluded = !exception;
            }
        }
        excluded
    }

    /// Whether nothing is excluded at all (the common case, checked once).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// `path` cleaned as Go's `filepath.Clean` does, without a leading `/`.
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = vec![];
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

fn matches_or_parent(pattern: &str, path: &str) -> bool {
    if pattern::matches(pattern, path) {
        return true;
    }
    let mut parent = path;
    while let Some((up, _)) = parent.rsplit_once('/') {
        if pattern::matches(pattern, up) {
            return true;
        }
        parent = up;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_matching_pattern_decides() {
        let ignore = Ignore::parse(
            "# comment\n\
             *.md\n\
             !README.md\n\
             /secret/\n\
             build\n\
             **/*.tmp\n\
             docs/*\n\
             !docs/keep\n\
             ./dist/../out\n",
        );
        let table = [
            ("notes.md", true),
            ("README.md", false),
            ("sub/notes.md", false),
            ("secret", true),
            ("secret/key", true),
            ("build/x/y", true),
            ("a/b/c.tmp", true),
            ("docs/other", true),
            ("docs/keep", false),
            ("out/file", true),
            ("src/main.rs", false),
        ];
        for (path, want) in table {
            assert_eq!(ignore.excludes(path), want, "{path}");
        }
        assert!(Ignore::parse("\n# only\n").is_empty());
    }
}
