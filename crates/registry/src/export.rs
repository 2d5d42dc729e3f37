//! Reading DynamoDB exports of the registry, for planning offline or without access to the live
//! table. Two formats, detected from the content:
//!
//! * the JSON written by `aws dynamodb scan --table-name T --output json`: one document
//!   `{"Items": [...]}` in DynamoDB JSON;
//! * a DynamoDB export to S3: JSON lines of `{"Item": {...}}`, usually gzipped, in one or more
//!   data files (give one file or the export's folder).
//!
//! A file that is not valid JSON or not an export is an error naming the file and line; an item
//! that is an export item but not an understandable bot is reported and skipped.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use ragshift_model::Bot;
use serde_json::{Map, Value};

use crate::attr::item_from_json;
use crate::decode::{decode, Decoded, InvalidItem, BOT_ATTRIBUTES, BOT_MARKER};
use crate::error::RegistryError;

/// What an export holds.
#[derive(Debug, Default)]
pub struct ExportContents {
    /// Every bot, in file order.
    pub bots: Vec<Bot>,
    /// Bot items that could not be understood, with where they are.
    pub invalid: Vec<Located>,
    /// Items that are not bots (aliases, conversations).
    pub other_items: u64,
    /// Data files read.
    pub files: Vec<PathBuf>,
}

/// An invalid item and where it is in the export.
#[derive(Debug, Clone)]
pub struct Located {
    /// The item and the reason.
    pub item: InvalidItem,
    /// `line 12 of data/abc.json.gz`, `item 3 of bots.json`.
    pub location: String,
}

/// Reads an export file, or every data file of an export folder (`*.json`, `*.json.gz`, …,
/// except the `manifest-*` files).
pub fn read_export(path: &Path) -> Result<ExportContents, RegistryError> {
    let files = data_files(path)?;
    let mut contents = ExportContents::default();
    for file in &files {
        read_file(file, &mut contents)?;
    }
    contents.files = files;
    Ok(contents)
}

fn export_error(path: &Path, line: Option<usize>, reason: impl Into<String>) -> RegistryError {
    RegistryError::Export {
        path: path.to_path_buf(),
        line,
        reason: reason.into(),
    }
}

fn data_files(path: &Path) -> Result<Vec<PathBuf>, RegistryError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        export_error(
            path,
            None,
            format!("cannot read it ({e}); set [registry] path / --registry-file to the export file or folder"),
        )
    })?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| export_error(&dir, None, format!("cannot list the folder ({e})")))?;
        for entry in entries {
            let entry = entry.map_err(|e| export_error(&dir, None, e.to_string()))?;
            let p = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name.starts_with("manifest-") {
                continue;
            }
            if p.is_dir() {
                dirs.push(p);
            } else if [".json", ".json.gz", ".jsonl", ".jsonl.gz"]
                .iter()
                .any(|ext| name.ends_with(ext))
            {
                files.push(p);
            }
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(export_error(
            path,
            None,
            "no export data files (*.json, *.json.gz) in this folder",
        ));
    }
    Ok(files)
}

/// Opens a file, decompressing it when it starts with the gzip magic bytes.
fn open(path: &Path) -> Result<Box<dyn BufRead>, RegistryError> {
    let mut file =
        File::open(path).map_err(|e| export_error(path, None, format!("cannot open it ({e})")))?;
    let mut magic = [0_u8; 2];
    let n = file
        .read(&mut magic)
        .map_err(|e| export_error(path, None, e.to_string()))?;
    let file = File::open(path).map_err(|e| export_error(path, None, e.to_string()))?;
    Ok(if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(file),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    })
}

fn read_file(path: &Path, out: &mut ExportContents) -> Result<(), RegistryError> {
    let mut reader = open(path)?;
    // The first non-blank line tells the format: an export line is a whole `{"Item": …}`
    // object; the CLI's scan output starts a multi-line `{"Items": […]}` document.
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| export_error(path, Some(number + 1), format!("cannot read it ({e})")))?;
        if n == 0 {
            return Err(export_error(path, None, "the file is empty"));
        }
        number += 1;
        if !line.trim().is_empty() {
            break;
        }
    }
    let first: Option<Value> = serde_json::from_str(&line).ok();
    match first {
        Some(Value::Object(map)) if map.contains_key("Item") => {
            export_line(path, number, map, out)?;
            read_lines(path, reader, number, out)
        }
        Some(Value::Object(map)) if map.contains_key("Items") => {
            scan_document(path, Value::Object(map), out)
        }
        _ => {
            let whole: Value = serde_json::from_reader(open(path)?).map_err(|e| {
                export_error(
                    path,
                    Some(e.line()),
                    format!("not valid JSON ({e}); expected the output of `aws dynamodb scan --output json` or a DynamoDB export to S3"),
                )
            })?;
            scan_document(path, whole, out)
        }
    }
}

fn read_lines(
    path: &Path,
    mut reader: Box<dyn BufRead>,
    mut number: usize,
    out: &mut ExportContents,
) -> Result<(), RegistryError> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line).map_err(|e| {
            export_error(
                path,
                Some(number + 1),
                format!("cannot read it ({e}); is the file truncated?"),
            )
        })?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if line.trim().is_empty() {
            continue;
        }
        if !line.trim_start().starts_with('{') {
            return Err(export_error(
                path,
                Some(number),
                "not a DynamoDB export line ({\"Item\": {...}})",
            ));
        }
        if !line.contains(BOT_MARKER) {
            // Conversations dominate exports: check the JSON without building it.
            serde_json::from_str::<serde::de::IgnoredAny>(&line)
                .map_err(|e| export_error(path, Some(number), format!("not valid JSON ({e})")))?;
            out.other_items += 1;
            continue;
        }
        match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(map)) => export_line(path, number, map, out)?,
            Ok(_) => {
                return Err(export_error(
                    path,
                    Some(number),
                    "not a DynamoDB export line ({\"Item\": {...}})",
                ))
            }
            Err(e) => {
                return Err(export_error(
                    path,
                    Some(number),
                    format!("not valid JSON ({e})"),
                ))
            }
        }
    }
}

fn export_line(
    path: &Path,
    number: usize,
    mut map: Map<String, Value>,
    out: &mut ExportContents,
) -> Result<(), RegistryError> {
    match map.remove("Item") {
        Some(Value::Object(item)) => {
            add_item(
                &item,
                || format!("line {number} of {}", path.display()),
                out,
            );
            Ok(())
        }
        _ => Err(export_error(
            path,
            Some(number),
            "not a DynamoDB export line ({\"Item\": {...}})",
        )),
    }
}

fn scan_document(path: &Path, doc: Value, out: &mut ExportContents) -> Result<(), RegistryError> {
    let Some(Value::Array(items)) = doc.get("Items") else {
        return Err(export_error(
            path,
            None,
            "no \"Items\" array: expected the output of `aws dynamodb scan --output json` or a DynamoDB export to S3",
        ));
    };
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::Object(item) => add_item(
                item,
                || format!("item {} of {}", i + 1, path.display()),
                out,
            ),
            _ => {
                return Err(export_error(
                    path,
                    None,
                    format!("Items[{i}] is not an object"),
                ))
            }
        }
    }
    Ok(())
}

fn add_item(item: &Map<String, Value>, location: impl Fn() -> String, out: &mut ExportContents) {
    let decoded = match item_from_json(item, BOT_ATTRIBUTES) {
        Ok(item) => decode(&item),
        Err(error) => {
            let key = match item
                .get("SK")
                .and_then(|v| v.get("S"))
                .and_then(Value::as_str)
            {
                Some(sk) if !sk.contains(BOT_MARKER) => {
                    out.other_items += 1;
                    return;
                }
                Some(sk) => sk.to_owned(),
                None => "<unknown key>".to_owned(),
            };
            Decoded::Invalid(InvalidItem { key, error })
        }
    };
    match decoded {
        Decoded::Bot(bot) => out.bots.push(*bot),
        Decoded::NotABot => out.other_items += 1,
        Decoded::Invalid(item) => out.invalid.push(Located {
            item,
            location: location(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(dir: &Path, name: &str, text: &str, gzip: bool) -> PathBuf {
        let p = dir.join(name);
        let mut f = File::create(&p).unwrap();
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            gz.write_all(text.as_bytes()).unwrap();
            gz.finish().unwrap();
        } else {
            f.write_all(text.as_bytes()).unwrap();
        }
        p
    }

    const BOT: &str = r#"{"PK":{"S":"u"},"SK":{"S":"u#BOT#B1"},"Title":{"S":"t"}}"#;
    const CONV: &str = r#"{"PK":{"S":"u"},"SK":{"S":"u#CONV#C1"},"MessageMap":{"S":"{}"}}"#;
    const BAD: &str = r#"{"PK":{"S":"u"},"SK":{"S":"u#BOT#B2"},"Knowledge":{"L":[]}}"#;

    #[test]
    fn scan_output_and_export_lines_hold_the_same_bots() {
        let dir = tempfile::tempdir().unwrap();
        let scan = write(
            dir.path(),
            "scan.json",
            &format!("{{\n  \"Items\": [\n    {BOT},\n    {CONV},\n    {BAD}\n  ],\n  \"Count\": 3\n}}\n"),
            false,
        );
        let a = read_export(&scan).unwrap();
        let export_dir = dir.path().join("AWSDynamoDB/0001/data");
        std::fs::create_dir_all(&export_dir).unwrap();
        write(
            &export_dir,
            "a.json.gz",
            &format!("{{\"Item\":{BOT}}}\n{{\"Item\":{CONV}}}\n"),
            true,
        );
        write(
            &export_dir,
            "b.json.gz",
            &format!("{{\"Item\":{BAD}}}\n"),
            true,
        );
        write(
            &dir.path().join("AWSDynamoDB/0001"),
            "manifest-summary.json",
            "{\"x\":1}",
            false,
        );
        let b = read_export(&dir.path().join("AWSDynamoDB")).unwrap();
        for c in [&a, &b] {
            assert_eq!(c.bots.len(), 1);
            assert_eq!(c.bots[0].key.bot_id, "B1");
            assert_eq!(c.other_items, 1);
            assert_eq!(c.invalid.len(), 1);
            assert_eq!(c.invalid[0].item.key, "u#BOT#B2");
        }
        assert_eq!(b.files.len(), 2);
        assert!(
            b.invalid[0].location.starts_with("line 1 of"),
            "{}",
            b.invalid[0].location
        );
        assert!(
            a.invalid[0].location.starts_with("item 3 of"),
            "{}",
            a.invalid[0].location
        );
    }

    #[test]
    fn malformed_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            "e.json",
            &format!("{{\"Item\":{BOT}}}\n\n{{\"Item\":{CONV}\n"),
            false,
        );
        let e = read_export(&p).unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("not valid JSON"), "{e}");
        let p = write(
            dir.path(),
            "f.json",
            "{\n  \"Items\": [\n    {\"PK\": \n",
            false,
        );
        let e = read_export(&p).unwrap_err().to_string();
        assert!(e.contains("line 4") || e.contains("line 3"), "{e}");
        let p = write(dir.path(), "g.json", "{\"Item\":{}}\n[1]\n", false);
        let e = read_export(&p).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let p = write(dir.path(), "h.json", "{\"Other\": 1}", false);
        assert!(read_export(&p).unwrap_err().to_string().contains("Items"));
        let e = read_export(&dir.path().join("nope.json"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--registry-file"), "{e}");
    }
}
