//! Docker's word rules for instruction arguments: splitting on blanks
//! outside quotes, and expanding one word the way the builder does for
//! ENV, ARG, LABEL, COPY, ADD, WORKDIR, USER, EXPOSE, VOLUME, STOPSIGNAL
//! and FROM (RUN, CMD and ENTRYPOINT are left to the container's shell):
//! quotes removed, the escape character taking the next one literally,
//! `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`,
//! `${NAME+word}` and `${NAME:?message}` substituted (not inside single
//! quotes).

use anyhow::{bail, Result};

/// The words of `text`, split on blanks outside quotes; quotes and escapes
/// stay in each word for `expand` to remove.
pub fn split(text: &str, escape: char) -> Vec<String> {
    let mut words = vec![];
    let mut word = String::new();
    let mut quote = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(open) => {
                word.push(c);
                if c == escape && open == '"' {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                } else if c == open {
                    quote = None;
                }
            }
            None if c.is_whitespace() => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            None => {
                word.push(c);
                if c == escape {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                } else if c == '\'' || c == '"' {
                    quote = Some(c);
                }
            }
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `word` with its quotes removed and its variables substituted from
/// `lookup` (None: not set).
pub fn expand(word: &str, escape: char, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String> {
    let chars: Vec<char> = word.chars().collect();
    let mut at = 0;
    expand_until(&chars, &mut at, escape, lookup, None)
}

/// Expands from `*at` to the end, or to an unquoted `}` when `closing`
/// (a `${...}` default being read), which is consumed.
fn expand_until(
    chars: &[char],
    at: &mut usize,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    closing: Option<char>,
) -> Result<String> {
    let mut out = String::new();
    let mut double = false;
    while *at < chars.len() {
        let c = chars[*at];
        *at += 1;
        match c {
            _ if Some(c) == closing && !double => return Ok(out),
            '\'' if !double => loop {
                let Some(&next) = chars.get(*at) else {
                    bail!("unmatched ' in {}", chars.iter().collect::<String>());
                };
                *at += 1;
                if next == '\'' {
                    break;
                }
                out.push(next);
            },
            '"' => double = !double,
            _ if c == escape => match chars.get(*at) {
                // Inside double quotes only these are escaped, as in sh.
                Some(&next) if !double || matches!(next, '"' | '$') || next == escape => {
                    out.push(next);
                    *at += 1;
                }
                _ => out.push(c),
            },
            '$' => out.push_str(&variable(chars, at, escape, lookup)?),
            _ => out.push(c),
        }
    }
    if double {
        bail!("unmatched \" in {}", chars.iter().collect::<String>());
    }
    if closing.is_some() {
        bail!("missing }} in {}", chars.iter().collect::<String>());
    }
    Ok(out)
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The value of the variable reference after a `$` at `*at`.
fn variable(
    chars: &[char],
    at: &mut usize,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String> {
    let whole = || chars.iter().collect::<String>();
    if chars.get(*at) != Some(&'{') {
        let start = *at;
        while *at < chars.len() && is_name_char(chars[*at]) {
            *at += 1;
        }
        if *at == start {
            // A lone `$` stays.
            return Ok("$".to_string());
        }
        let name: String = chars[start..*at].iter().collect();
        return Ok(lookup(&name).unwrap_or_default());
    }
    *at += 1;
    let start = *at;
    while *at < chars.len() && is_name_char(chars[*at]) {
        *at += 1;
    }
    let name: String = chars[start..*at].iter().collect();
    if name.is_empty() {
        bail!("bad substitution in {}", whole());
    }
    let value = lookup(&name);
    match chars.get(*at) {
        Some('}') => {
            *at += 1;
            Ok(value.unwrap_or_default())
        }
        Some(':') | Some('-') | Some('+') | Some('?') => {
            let colon = chars[*at] == ':';
            if colon {
                *at += 1;
            }
            let Some(&operator) = chars.get(*at) else {
                bail!("missing }} in {}", whole());
            };
            *at += 1;
            let word = expand_until(chars, at, escape, lookup, Some('}'))?;
            // With the colon, an empty value counts as unset.
            let set = match colon {
                true => value.as_deref().is_some_and(|v| !v.is_empty()),
                false => value.is_some(),
            };
            match operator {
                '-' => Ok(if set { value.unwrap_or_default() } else { word }),
                '+' => Ok(if set { word } else { String::new() }),
                '?' if set => Ok(value.unwrap_or_default()),
                '?' => bail!(
                    "{name}: {}",
                    if word.is_empty() { "is not set" } else { &word }
                ),
                other => bail!("unsupported modifier ({other}) in substitution {}", whole()),
            }
        }
        _ => bail!("bad substitution in {}", whole()),
    }
}

/// `text` as key=value pairs (ENV, LABEL, ARG), each split as a word and
/// expanded; `ENV key value...` (the old form without `=`) when
/// `legacy_pairs` and the first word has none.
pub fn pairs(
    text: &str,
    escape: char,
    legacy_pairs: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<(String, Option<String>)>> {
    let words = split(text, escape);
    if legacy_pairs {
        if let Some(first) = words.first().filter(|w| !w.contains('=')) {
            let rest = text.trim_start()[first.len()..].trim();
            return Ok(vec![(
                expand(first, escape, lookup)?,
                Some(expand(rest, escape, lookup)?),
            )]);
        }
    }
    words
        .iter()
        .map(|word| match word.split_once('=') {
            Some((key, value)) => Ok((
                expand(key, escape, lookup)?,
                Some(expand(value, escape, lookup)?),
            )),
            None => Ok((expand(word, escape, lookup)?, None)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("apple".into()),
            "EMPTY" => Some(String::new()),
            "SPACED" => Some("a b".into()),
            _ => None,
        }
    }

    fn x(word: &str) -> String {
        expand(word, '\\', &env).unwrap()
    }

    #[test]
    fn substitution_as_docker_applies_it() {
        let table = [
            ("$A", "apple"),
            ("${A}s", "apples"),
            ("pre-$A-post", "pre-apple-post"),
            ("$NOPE.", "."),
            ("${NOPE:-dflt}", "dflt"),
            ("${EMPTY:-dflt}", "dflt"),
            ("${EMPTY-dflt}", ""),
            ("${A:-dflt}", "apple"),
            ("${A:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${NOPE:+alt}", ""),
            ("${NOPE:-$A}", "apple"),
            ("${NOPE:-x y}", "x y"),
            ("'$A'", "$A"),
            ("\"$A b\"", "apple b"),
            ("\\$A", "$A"),
            ("\"\\$A\"", "$A"),
            ("\"a\\b\"", "a\\b"),
            ("a\\ b", "a b"),
            ("cost: $", "cost: $"),
            ("$SPACED", "a b"),
        ];
        for (word, want) in table {
            assert_eq!(x(word), want, "{word}");
        }
        assert!(expand("${NOPE:?must be set}", '\\', &env)
            .unwrap_err()
            .to_string()
            .contains("must be set"));
        assert!(expand("${A", '\\', &env).is_err());
        assert!(expand("\"open", '\\', &env).is_err());
        assert_eq!(expand("`$A", '`', &env).unwrap(), "$A");
    }

    #[test]
    fn words_split_on_blanks_outside_quotes() {
        assert_eq!(
            split(r#"a "b c" d\ e 'f g'  h"#, '\\'),
            [r#"a"#, r#""b c""#, r#"d\ e"#, "'f g'", "h"]
        );
        assert_eq!(split("  ", '\\'), Vec::<String>::new());
    }

    #[test]
    fn pairs_in_both_forms() {
        let got = pairs(r#"A=1 B="two words" C=${A}x D"#, '\\', false, &env).unwrap();
        assert_eq!(
            got,
            vec![
                ("A".into(), Some("1".into())),
                ("B".into(), Some("two words".into())),
                ("C".into(), Some("applex".into())),
                ("D".into(), None),
            ]
        );
        let legacy = pairs("GREETING hello  $A world", '\\', true, &env).unwrap();
        assert_eq!(
            legacy,
            vec![("GREETING".into(), Some("hello  apple world".into()))]
        );
    }
}
