//! Text tables as docker prints them: each column as wide as its widest
//! cell, three spaces apart, the last one unpadded. Cells come from images
//! and users (a command, a name): control characters in them are shown
//! escaped, so none reaches the terminal as a control sequence.

use std::io::Write;

/// docker's confirmation: `warning`, then "Are you sure you want to
/// continue? [y/N]" on stderr; true for a yes on stdin.
pub fn confirm(warning: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, Write};
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(anyhow::Error::from)
        .map_err(|err| err.context("reading the answer"))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES"))
}

/// docker's `rm` of named things (volumes, networks): `remove` each, whose
/// answer says whether it was there to remove; each removed one's name on
/// stdout, each failure on stderr. Status 1 if any failed.
pub fn remove_each(names: &[String], mut remove: impl FnMut(&str) -> anyhow::Result<bool>) -> i32 {
    let mut status = 0;
    for name in names {
        match remove(name) {
            Ok(true) => println!("{name}"),
            Ok(false) => {}
            Err(err) => {
                eprintln!("rocker: {err:#}");
                status = 1;
            }
        }
    }
    status
}

/// A prune's section, as docker prints it: `heading`, each item on a
/// line, a blank line; nothing when nothing went.
pub fn write_removed(
    out: &mut impl std::io::Write,
    heading: &str,
    items: &[String],
) -> std::io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(out, "{heading}")?;
    for item in items {
        writeln!(out, "{item}")?;
    }
    writeln!(out)
}

pub fn write_table(
    out: &mut impl Write,
    headers: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|cell| printable(cell)).collect())
        .collect();
    let rows = rows.as_slice();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
    // The whole table in one write: stdout is line-buffered, and a write
    // per row costs a system call each (3000 of them for `ps -a` over a
    // full store).
    let mut text = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (index, cell) in row.iter().enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                let pad = widths[index] - cell.chars().count() + 3;
                line.push_str(cell);
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    out.write_all(text.as_bytes())
}

/// `text` with its control characters (escape, newline, DEL, C1...)
/// written as Rust escapes: `\u{1b}`, `\n`.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().to_string(),
            false => c.to_string(),
        })
        .collect()
}

/// Bytes as docker shows them: decimal units, one decimal.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < units.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{value:.1}{}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell() {
        let mut out = vec![];
        let rows = vec![
            vec!["a-long-one".to_string(), "x".to_string()],
            vec!["b".to_string(), "y".to_string()],
        ];
        write_table(&mut out, &["ID", "NAME"], &rows).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ID           NAME\na-long-one   x\nb            y\n"
        );
    }

    #[test]
    fn control_characters_are_shown_not_sent() {
        assert_eq!(printable("sh -c 'ls'"), "sh -c 'ls'");
        assert_eq!(
            printable("\u{1b}]0;owned\u{7}x\ny"),
            "\\u{1b}]0;owned\\u{7}x\\ny"
        );
        let mut out = vec![];
        write_table(&mut out, &["CMD"], &[vec!["\u{1b}[2J".to_string()]]).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "CMD\n\\u{1b}[2J\n");
    }
}
