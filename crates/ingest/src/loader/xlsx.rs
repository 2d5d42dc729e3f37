//! Excel workbooks, read with `calamine` (pure Rust, handles shared strings, numbers and
//! dates): every sheet as its name followed by its rows, cells separated by tabs; sheets are
//! separated by the platform's paragraph separator.

use std::io::Cursor;

use calamine::{open_workbook_from_rs, Data, Reader, Xlsx};

use crate::error::ErrorKind;

/// Extracts the text of every cell of an XLSX file.
pub(super) fn load(bytes: &[u8]) -> Result<String, ErrorKind> {
    let mut workbook: Xlsx<_> =
        open_workbook_from_rs(Cursor::new(bytes)).map_err(|e| ErrorKind::corrupt("xlsx", e))?;
    let mut sheets = Vec::new();
    for name in workbook.sheet_names() {
        let range = workbook
            .worksheet_range(&name)
            .map_err(|e| ErrorKind::corrupt("xlsx", format!("sheet {name:?}: {e}")))?;
        let mut text = String::new();
        for row in range.rows() {
            let cells: Vec<String> = row.iter().map(cell_text).collect();
            let used = cells
                .iter()
                .rposition(|c| !c.is_empty())
                .map_or(0, |i| i + 1);
            if used == 0 {
                continue;
            }
            text.push_str(&cells[..used].join("\t"));
            text.push('\n');
        }
        if !text.trim().is_empty() {
            sheets.push(format!("{name}\n{}", text.trim_end()));
        }
    }
    Ok(sheets.join("\n\n\n"))
}

fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Error(_) | Data::Empty => String::new(),
        Data::String(s) => s.trim().replace(['\t', '\n'], " "),
        other => other.to_string(),
    }
}
