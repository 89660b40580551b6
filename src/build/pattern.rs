//! Path patterns as docker matches them (Go's `filepath.Match`, plus `**`
//! for any number of directories in `.dockerignore`): `*` is any run of
//! characters but `/`, `?` one of them, `[a-z]` / `[!a-z]` a class, and
//! the escape `\` takes the next character as it is.

/// Whether `path` (slash-separated, relative) matches `pattern` whole.
pub fn matches(pattern: &str, path: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let path: Vec<char> = path.chars().collect();
    match_from(&pattern, &path)
}

fn match_from(pattern: &[char], path: &[char]) -> bool {
    let Some(&first) = pattern.first() else {
        return path.is_empty();
    };
    match first {
        '*' if pattern.get(1) == Some(&'*') => {
            // `**/` may also match no directory at all.
            let rest = &pattern[2..];
            if let Some(after_slash) = rest.strip_prefix(&['/']) {
                if match_from(after_slash, path) {
                    return true;
                }
            }
            (0..=path.len()).any(|skip| match_from(rest, &path[skip..]))
        }
        '*' => {
            let rest = &pattern[1..];
            for skip in 0..=path.len() {
                if match_from(rest, &path[skip..]) {
                    return true;
                }
                if path.get(skip) == Some(&'/') {
                    break;
                }
            }
            false
        }
        '?' => {
            matches!(path.first(), Some(c) if *c != '/') && match_from(&pattern[1..], &path[1..])
        }
        '[' => match (class(&pattern[1..], path.first().copied()), path.first()) {
            (Some((true, used)), Some(_)) => match_from(&pattern[1 + used..], &path[1..]),
            _ => false,
        },
        '\\' if pattern.len() > 1 => {
            path.first() == Some(&pattern[1]) && match_from(&pattern[2..], &path[1..])
        }
        literal => path.first() == Some(&literal) && match_from(&pattern[1..], &path[1..]),
    }
}

/// Whether `c` is in the class that starts at `pattern` (after `[`), and
/// how many characters of the pattern the class takes (its `]` too).
/// None for a class that never closes (it matches nothing).
fn class(pattern: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let c = c.filter(|c| *c != '/')?;
    let mut at = 0;
    let negated = matches!(pattern.first(), Some('!') | Some('^'));
    if negated {
        at += 1;
    }
    let mut found = false;
    let mut first = true;
    loop {
        let &start = pattern.get(at)?;
        if start == ']' && !first {
            return Some((found != negated, at + 1));
        }
        first = false;
        let (low, used) = match start {
            '\\' => (*pattern.get(at + 1)?, 2),
            other => (other, 1),
        };
        at += used;
        if pattern.get(at) == Some(&'-') && pattern.get(at + 1).is_some_and(|c| *c != ']') {
            let high = match pattern[at + 1] {
                '\\' => {
                    at += 1;
                    *pattern.get(at + 1)?
                }
                other => other,
            };
            at += 2;
            found |= low <= c && c <= high;
        } else {
            found |= low == c;
        }
    }
}

/// Whether `text` holds a pattern character (otherwise it is a plain path).
pub fn is_pattern(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_docker_matches_them() {
        let table = [
            ("*.txt", "a.txt", true),
            ("*.txt", "dir/a.txt", false),
            ("*/a.txt", "dir/a.txt", true),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("[a-c]x", "bx", true),
            ("[!a-c]x", "bx", false),
            ("[!a-c]x", "dx", true),
            ("**/*.log", "a/b/c.log", true),
            ("**/*.log", "c.log", true),
            ("node_modules/**", "node_modules/x/y", true),
            ("**", "anything/at/all", true),
            ("a/**/b", "a/b", true),
            ("a/**/b", "a/x/y/b", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "axb", false),
            ("[unclosed", "u", false),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ];
        for (pattern, path, want) in table {
            assert_eq!(matches(pattern, path), want, "{pattern} ~ {path}");
        }
    }
}
