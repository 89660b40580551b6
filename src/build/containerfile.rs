//! The lines of a Containerfile, as docker's parser reads them: parser
//! directives (`# escape=`, `# syntax=`, `# check=`) at the very top,
//! comment lines dropped (inside a continued instruction too), lines
//! continued by the escape character at their end, the keyword split off,
//! and here-documents (`<<EOF` ... `EOF`) of RUN, COPY and ADD taken in
//! with their instruction. What the arguments mean is `instruction`'s job.

use anyhow::{bail, Result};

/// One instruction as written: its keyword (upper case), its arguments on
/// one line (continuations joined), and its here-documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The line it starts on, from 1.
    pub number: usize,
    pub keyword: String,
    pub arguments: String,
    pub heredocs: Vec<Heredoc>,
}

/// A here-document: `<<NAME` (its variables expanded when used) or
/// `<<'NAME'` / `<<"NAME"` (taken as it is); `<<-` strips leading tabs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub expand: bool,
    /// Its lines, each with its newline.
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containerfile {
    /// `\` unless `# escape=` says `` ` ``.
    pub escape: char,
    pub lines: Vec<Line>,
}

/// The instructions whose arguments may open here-documents.
const TAKES_HEREDOCS: &[&str] = &["RUN", "COPY", "ADD"];

pub fn parse(text: &str) -> Result<Containerfile> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let raw: Vec<&str> = text.lines().collect();
    let (escape, first) = directives(&raw)?;
    let mut lines = vec![];
    let mut at = first;
    while at < raw.len() {
        let start = at;
        let trimmed = raw[at].trim_start();
        at += 1;
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut logical = String::new();
        let mut piece = trimmed;
        loop {
            match continued(piece, escape) {
                Some(head) => {
                    logical.push_str(head);
                    // The next line that is neither empty nor a comment
                    // goes on; the end of the file ends it.
                    let next = loop {
                        let Some(line) = raw.get(at) else {
                            break None;
                        };
                        at += 1;
                        let trimmed = line.trim_start();
                        if !trimmed.is_empty() && !trimmed.starts_with('#') {
                            break Some(*line);
                        }
                    };
                    match next {
                        Some(line) => piece = line,
                        None => break,
                    }
                }
                None => {
                    logical.push_str(piece);
                    break;
                }
            }
        }
        let (keyword, arguments) = match logical.split_once(char::is_whitespace) {
            Some((keyword, rest)) => (keyword, rest.trim()),
            None => (logical.as_str(), ""),
        };
        let keyword = keyword.to_ascii_uppercase();
        let mut heredocs = vec![];
        if TAKES_HEREDOCS.contains(&keyword.as_str()) {
            for (name, expand, strip_tabs) in heredoc_markers(arguments) {
                let mut body = String::new();
                loop {
                    let Some(line) = raw.get(at) else {
                        bail!(
                            "line {}: the here-document {name} is never closed (a line \
                             with {name} alone ends it)",
                            start + 1
                        );
                    };
                    at += 1;
                    let line = match strip_tabs {
                        true => line.trim_start_matches('\t'),
                        false => line,
                    };
                    if line == name {
                        break;
                    }
                    body.push_str(line);
                    body.push('\n');
                }
                heredocs.push(Heredoc { name, expand, body });
            }
        }
        lines.push(Line {
            number: start + 1,
            keyword,
            arguments: arguments.to_string(),
            heredocs,
        });
    }
    Ok(Containerfile { escape, lines })
}

/// The escape character the directives set, and the first line after
/// them. Directives are `# key=value` lines before anything else; the
/// first line that is not one ends them.
fn directives(raw: &[&str]) -> Result<(char, usize)> {
    let mut escape = '\\';
    for (index, line) in raw.iter().enumerate() {
        let Some(directive) = line.trim().strip_prefix('#') else {
            return Ok((escape, index));
        };
        let Some((key, value)) = directive.split_once('=') else {
            return Ok((escape, index));
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        match key.as_str() {
            "escape" => {
                escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => bail!(
                        "line {}: escape={other} is not an escape docker knows (\\ or `)",
                        index + 1
                    ),
                }
            }
            // The syntax (a BuildKit frontend) and lint checks: rocker is
            // its own frontend.
            "syntax" | "check" => {}
            _ => return Ok((escape, index)),
        }
    }
    Ok((escape, raw.len()))
}

/// `line` without the escape character that continues it (and the
/// blanks after it), when it ends so.
fn continued(line: &str, escape: char) -> Option<&str> {
    line.trim_end_matches([' ', '\t']).strip_suffix(escape)
}

/// The here-documents `arguments` opens, in order: each `<<NAME`,
/// `<<-NAME`, `<<'NAME'` or `<<"NAME"` outside quotes (not `<<<`).
fn heredoc_markers(arguments: &str) -> Vec<(String, bool, bool)> {
    let bytes = arguments.as_bytes();
    let mut found = vec![];
    let mut quote = None;
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        match quote {
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None if byte == b'\'' || byte == b'"' => quote = Some(byte),
            None if byte == b'\\' => at += 1,
            // A here-string, not a document.
            None if bytes[at..].starts_with(b"<<<") => at += 2,
            None if bytes[at..].starts_with(b"<<") => {
                let mut cursor = at + 2;
                let strip_tabs = bytes.get(cursor) == Some(&b'-');
                if strip_tabs {
                    cursor += 1;
                }
                let delimiter = bytes
                    .get(cursor)
                    .copied()
                    .filter(|b| *b == b'\'' || *b == b'"');
                if delimiter.is_some() {
                    cursor += 1;
                }
                let name_start = cursor;
                while cursor < bytes.len()
                    && (bytes[cursor].is_ascii_alphanumeric() || b"_.-".contains(&bytes[cursor]))
                {
                    cursor += 1;
                }
                let closed = match delimiter {
                    Some(delimiter) => bytes.get(cursor) == Some(&delimiter),
                    None => true,
                };
                if cursor > name_start && closed {
                    found.push((
                        arguments[name_start..cursor].to_string(),
                        delimiter.is_none(),
                        strip_tabs,
                    ));
                    at = cursor + usize::from(delimiter.is_some());
                    continue;
                }
            }
            None => {}
        }
        at += 1;
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<(usize, String, String)> {
        parse(text)
            .unwrap()
            .lines
            .into_iter()
            .map(|line| (line.number, line.keyword, line.arguments))
            .collect()
    }

    fn line(number: usize, keyword: &str, arguments: &str) -> (usize, String, String) {
        (number, keyword.to_string(), arguments.to_string())
    }

    #[test]
    fn comments_blank_lines_and_continuations_as_docker_reads_them() {
        let text = "# syntax=docker/dockerfile:1\n\
                    from debian:12 AS base\n\
                    \n\
                    # a comment\n\
                    RUN echo one \\\n\
                    # a comment inside is dropped\n\
                    \n\
                    \x20 two   \\  \n\
                    \x20 three\n\
                    \x20  ENV A=1 # not a comment here\n\
                    CMD [\"sh\"]";
        assert_eq!(
            lines(text),
            vec![
                line(2, "FROM", "debian:12 AS base"),
                line(5, "RUN", "echo one   two     three"),
                line(10, "ENV", "A=1 # not a comment here"),
                line(11, "CMD", "[\"sh\"]"),
            ]
        );
    }

    #[test]
    fn the_escape_directive_changes_the_continuation() {
        let text = "# escape=`\nFROM x\nRUN dir c:\\ `\n  /b\n";
        let file = parse(text).unwrap();
        assert_eq!(file.escape, '`');
        assert_eq!(file.lines[1].arguments, "dir c:\\   /b");
        // After the first instruction a directive is a comment.
        let file = parse("FROM x\n# escape=`\nRUN a \\\n b\n").unwrap();
        assert_eq!(file.escape, '\\');
        assert_eq!(file.lines[1].arguments, "a  b");
        assert!(parse("# escape=x\nFROM x\n").is_err());
    }

    #[test]
    fn here_documents_follow_their_instruction() {
        let text = "FROM x\n\
                    RUN <<EOF\n\
                    echo $HOME\n\
                    FROM not-an-instruction\n\
                    EOF\n\
                    RUN python3 <<'PY' > /out && cat <<-\"T\"\n\
                    print(1)\n\
                    PY\n\
                    \tindented\n\
                    \tT\n\
                    RUN echo '<<NOT' <<<here\n\
                    CMD true\n";
        let file = parse(text).unwrap();
        let keywords: Vec<&str> = file.lines.iter().map(|l| l.keyword.as_str()).collect();
        assert_eq!(keywords, ["FROM", "RUN", "RUN", "RUN", "CMD"]);
        assert_eq!(
            file.lines[1].heredocs,
            vec![Heredoc {
                name: "EOF".into(),
                expand: true,
                body: "echo $HOME\nFROM not-an-instruction\n".into()
            }]
        );
        let second = &file.lines[2].heredocs;
        assert_eq!(second.len(), 2);
        assert_eq!((second[0].name.as_str(), second[0].expand), ("PY", false));
        assert_eq!(second[0].body, "print(1)\n");
        assert_eq!(
            (second[1].name.as_str(), second[1].body.as_str()),
            ("T", "indented\n")
        );
        assert!(file.lines[3].heredocs.is_empty());
        assert!(parse("FROM x\nRUN <<EOF\necho\n").is_err());
    }
}
