//! What commands print on stdout: JSON for scripts, aligned tables for people.
//! (Chatter, progress and hints go to stderr; see `ui`.)

use serde::Serialize;

use crate::error::CommandError;

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> Result<(), CommandError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CommandError::unexpected(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// Prints each value as one JSON line (for exports).
pub fn print_json_lines<'a, T: Serialize + 'a>(values: impl IntoIterator<Item = &'a T>) -> Result<(), CommandError> {
    for value in values {
        println!("{}", serde_json::to_string(value).map_err(|e| CommandError::unexpected(e.to_string()))?);
    }
    Ok(())
}

/// Renders rows as aligned columns (header first); the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut out = String::new();
        for (i, cell) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = vec![line(header.to_vec())];
    out.extend(rows.iter().map(|r| line(r.iter().map(String::as_str).collect())));
    out.join("\n")
}

/// Prints a table on stdout.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    println!("{}", table(header, rows));
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let t = super::table(&["ID", "NAME"], &[vec!["1".into(), "alice".into()], vec!["100".into(), "bob".into()]]);
        assert_eq!(t, "ID   NAME\n1    alice\n100  bob");
    }
}
