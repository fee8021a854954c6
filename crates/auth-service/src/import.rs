//! `auth-service users import FILE`: moving users from an existing service. This module reads
//! the file (JSON lines or CSV) into rows; `services::audit` checks them and imports all or none.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::services::audit::import::{ImportFile, ImportOutcome, ImportRow, RowProblem};
use crate::{App, Config};

const COLUMNS: [&str; 6] = [
    "email",
    "username",
    "password_hash",
    "display_name",
    "is_verified",
    "created_at",
];
const REQUIRED: [&str; 3] = ["email", "username", "password_hash"];

/// Imports `file` into the configured database: prints `imported N users`, or every problem
/// with its line number and fails without importing anything.
pub async fn run(config: Config, file: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let extension = file
        .extension()
        .and_then(|ext| ext.to_str())
        .map(str::to_ascii_lowercase);
    let parsed = match extension.as_deref() {
        Some("jsonl" | "ndjson") => read_jsonl(&text),
        Some("csv") => read_csv(&text),
        _ => anyhow::bail!(
            "{}: the file name must end in .jsonl, .ndjson or .csv",
            file.display()
        ),
    };
    let app = App::build(config).await?;
    let outcome = app.state().services.audit.import_users(parsed).await;
    app.store().close().await;
    match outcome.map_err(|error| anyhow::anyhow!("nothing was imported: {error}"))? {
        ImportOutcome::Imported(count) => {
            writeln!(std::io::stdout(), "imported {count} users")?;
            Ok(())
        }
        ImportOutcome::Refused(problems) => {
            let mut stderr = std::io::stderr().lock();
            for problem in &problems {
                writeln!(stderr, "{problem}")?;
            }
            anyhow::bail!(
                "{} problem(s) in {}; nothing was imported",
                problems.len(),
                file.display()
            )
        }
    }
}

/// One JSON object per line; blank lines are skipped.
fn read_jsonl(text: &str) -> ImportFile {
    let mut file = ImportFile::default();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<BTreeMap<String, Value>>(raw) {
            Ok(fields) => file.add(row(line, fields)),
            Err(error) => file.problems.push(RowProblem::new(
                line,
                "record",
                format!("is not a JSON object: {error}"),
            )),
        }
    }
    file
}

/// A header row naming the columns, then one row per user. Empty cells count as absent.
fn read_csv(text: &str) -> ImportFile {
    let mut file = ImportFile::default();
    let records = match csv_records(text) {
        Ok(records) => records,
        Err(problem) => {
            file.problems.push(problem);
            return file;
        }
    };
    let mut records = records.into_iter();
    let Some((header_line, header)) = records.next() else {
        return file;
    };
    let header: Vec<String> = header
        .iter()
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let missing = REQUIRED
        .iter()
        .filter(|name| !header.iter().any(|h| h == *name));
    for name in missing {
        file.problems.push(RowProblem::new(
            header_line,
            name,
            "the header lacks this column",
        ));
    }
    if !file.problems.is_empty() {
        return file;
    }
    for (line, cells) in records {
        if cells.len() != header.len() {
            let message = format!("has {} fields, the header {}", cells.len(), header.len());
            file.problems.push(RowProblem::new(line, "record", message));
            continue;
        }
        let fields = header
            .iter()
            .cloned()
            .zip(cells)
            .filter(|(_, cell)| !cell.is_empty())
            .map(|(name, cell)| (name, Value::String(cell)))
            .collect();
        file.add(row(line, fields));
    }
    file
}

impl ImportFile {
    fn add(&mut self, row: Result<ImportRow, Vec<RowProblem>>) {
        match row {
            Ok(row) => self.rows.push(row),
            Err(mut problems) => self.problems.append(&mut problems),
        }
    }
}

/// The row named `fields` describe: strings for text; `is_verified` a boolean (or
/// `true`/`false`/`1`/`0` in CSV); `created_at` RFC 3339.
fn row(line: usize, mut fields: BTreeMap<String, Value>) -> Result<ImportRow, Vec<RowProblem>> {
    let mut problems = Vec::new();
    let mut text = |name: &str, required: bool| match fields.remove(name) {
        Some(Value::String(value)) => Some(value),
        None | Some(Value::Null) if !required => None,
        None | Some(Value::Null) => {
            problems.push(RowProblem::new(line, name, "is required"));
            None
        }
        Some(_) => {
            problems.push(RowProblem::new(line, name, "must be a string"));
            None
        }
    };
    let email = text("email", true);
    let username = text("username", true);
    let password_hash = text("password_hash", true);
    let display_name = text("display_name", false);
    let created_at = text("created_at", false);
    let is_verified = fields.remove("is_verified");
    let is_verified = match is_verified.as_ref().map(bool_of) {
        None => false,
        Some(Some(value)) => value,
        Some(None) => {
            problems.push(RowProblem::new(
                line,
                "is_verified",
                "must be true or false",
            ));
            false
        }
    };
    let created_at = created_at.and_then(|raw| match DateTime::parse_from_rfc3339(raw.trim()) {
        Ok(time) => Some(time.with_timezone(&Utc)),
        Err(_) => {
            let message = "must be an RFC 3339 time such as 2024-01-31T12:00:00Z";
            problems.push(RowProblem::new(line, "created_at", message));
            None
        }
    });
    for name in fields.keys() {
        let message = format!("is not a known field; expected {}", COLUMNS.join(", "));
        problems.push(RowProblem::new(line, name, message));
    }
    match (email, username, password_hash) {
        (Some(email), Some(username), Some(password_hash)) if problems.is_empty() => {
            Ok(ImportRow {
                line,
                email,
                username,
                password_hash,
                display_name,
                is_verified,
                created_at,
            })
        }
        _ => Err(problems),
    }
}

fn bool_of(value: &Value) -> Option<bool> {
    match value {
        Value::Null => Some(false),
        Value::Bool(value) => Some(*value),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Splits CSV (RFC 4180: fields separated by commas; a quoted field may hold commas, line
/// breaks and doubled quotes) into records, each with the line it starts on. Blank lines are
/// skipped.
fn csv_records(text: &str) -> Result<Vec<(usize, Vec<String>)>, RowProblem> {
    let malformed = |line: usize, message: &str| RowProblem::new(line, "csv", message);
    let mut records = Vec::new();
    let (mut record, mut field) = (Vec::new(), String::new());
    let (mut line, mut start) = (1, 1);
    let (mut in_quotes, mut closed_quote) = (false, false);
    let mut chars = text.trim_start_matches('\u{feff}').chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => (in_quotes, closed_quote) = (false, true),
                _ => {
                    line += usize::from(c == '\n');
                    field.push(c);
                }
            }
            continue;
        }
        match c {
            ',' | '\n' => {
                record.push(std::mem::take(&mut field));
                closed_quote = false;
                if c == '\n' {
                    if record != [""] {
                        records.push((start, std::mem::take(&mut record)));
                    }
                    record.clear();
                    line += 1;
                    start = line;
                }
            }
            '\r' if chars.peek() == Some(&'\n') => {}
            '"' if field.is_empty() && !closed_quote => in_quotes = true,
            _ if closed_quote => return Err(malformed(line, "text after a closing quote")),
            '"' => return Err(malformed(line, "a quote inside an unquoted field")),
            _ => field.push(c),
        }
    }
    if in_quotes {
        return Err(malformed(start, "a quoted field is not closed"));
    }
    record.push(field);
    if record != [""] {
        records.push((start, record));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(records: &[(usize, Vec<String>)]) -> Vec<(usize, Vec<&str>)> {
        records
            .iter()
            .map(|(line, cells)| (*line, cells.iter().map(String::as_str).collect()))
            .collect()
    }

    #[test]
    fn csv_fields_may_be_quoted_with_commas_quotes_and_line_breaks() {
        let text = "\u{feff}a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\n\n\"two\nlines\",,z";

        let records = csv_records(text).unwrap();

        assert_eq!(
            cells(&records),
            [
                (1, vec!["a", "b", "c"]),
                (2, vec!["x, y", "say \"hi\"", ""]),
                (4, vec!["two\nlines", "", "z"]),
            ]
        );
    }

    #[test]
    fn malformed_csv_names_the_line() {
        assert_eq!(csv_records("a\n\"open").unwrap_err().line, 2);
        assert_eq!(csv_records("a\nb\n\"x\"y").unwrap_err().line, 3);
        assert_eq!(csv_records("a\nb\"c").unwrap_err().line, 2);
    }

    #[test]
    fn csv_rows_become_import_rows() {
        let text = "email,username,password_hash,is_verified,created_at\n\
                    a@example.com,alice,$2b$x,true,2020-01-02T03:04:05Z\n\
                    b@example.com,bob,$2b$y,,\n\
                    c@example.com,carol\n\
                    d@example.com,dave,$2b$z,maybe,yesterday\n";

        let file = read_csv(text);

        assert_eq!(file.rows.len(), 2);
        assert!(file.rows[0].is_verified);
        assert_eq!(file.rows[0].line, 2);
        assert_eq!(
            file.rows[0].created_at.unwrap().to_rfc3339(),
            "2020-01-02T03:04:05+00:00"
        );
        assert!(!file.rows[1].is_verified && file.rows[1].created_at.is_none());
        let problems: Vec<String> = file.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("line 4: record: "));
        assert!(problems[1].starts_with("line 5: is_verified: "));
        assert!(problems[2].starts_with("line 5: created_at: "));
    }

    #[test]
    fn a_csv_header_must_name_the_required_columns() {
        let file = read_csv("email,name\na@example.com,alice\n");

        assert!(file.rows.is_empty());
        assert_eq!(
            file.problems[0].to_string(),
            "line 1: username: the header lacks this column"
        );
    }

    #[test]
    fn jsonl_lines_are_objects_with_known_fields() {
        let text = "{\"email\":\"a@example.com\",\"username\":\"alice\",\"password_hash\":\"h\",\"is_verified\":true}\n\
                    \n\
                    not json\n\
                    {\"email\":\"b@example.com\",\"username\":\"bob\",\"password_hash\":\"h\",\"role\":\"x\"}\n\
                    {\"email\":1,\"username\":\"carl\"}";

        let file = read_jsonl(text);

        assert_eq!(file.rows.len(), 1);
        assert!(file.rows[0].is_verified);
        let problems: Vec<String> = file.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("line 3: record: "));
        assert!(problems[1].starts_with("line 4: role: is not a known field"));
        assert_eq!(problems[2], "line 5: email: must be a string");
        assert_eq!(problems[3], "line 5: password_hash: is required");
    }
}
