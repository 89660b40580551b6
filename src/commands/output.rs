//! Text tables as docker prints them: each column as wide as its widest
//! cell, three spaces apart, the last one unpadded.

use std::io::Write;

pub fn write_table(
    out: &mut impl Write,
    headers: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let header: Vec<String> = headers.iter().map(|h| h.to_string()).collect();
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
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
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
}
