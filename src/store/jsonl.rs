//! The JSONL ledger: one JSON object per line, appended with `O_APPEND` and one `write` per
//! batch, so several processes can append to one file without interleaving lines (on local
//! file systems). Nothing is ever rewritten: a line that does not parse is reported with its
//! number and skipped, and a torn last line left by a crash is closed with a newline before the
//! next append so it cannot swallow the next record.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::ledger::CallRecord;

use super::record::{parse_json_line, write_json_line};
use super::TimeRange;

/// An open JSONL ledger, for appending.
#[derive(Debug)]
pub struct JsonlLedger {
    file: File,
    path: PathBuf,
    sync: bool,
    buf: Vec<u8>,
}

fn err(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Ledger {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

impl JsonlLedger {
    /// Opens (creating) `path` for appending. `sync`: every write is flushed to the disk.
    pub fn open(path: &Path, sync: bool) -> Result<Self> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(|e| err(path, e))?;
        // A crash mid-write can leave a last line without its newline: end it, so the next
        // record starts on a line of its own (the torn line is reported when read).
        let len = file.metadata().map_err(|e| err(path, e))?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1))
                .and_then(|_| file.read_exact(&mut last))
                .map_err(|e| err(path, e))?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(|e| err(path, e))?;
            }
        }
        Ok(JsonlLedger {
            file,
            path: path.to_path_buf(),
            sync,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Appends records with one `write`.
    pub fn append(&mut self, records: &[CallRecord]) -> Result<usize> {
        self.buf.clear();
        for r in records {
            write_json_line(r, &mut self.buf);
        }
        self.file
            .write_all(&self.buf)
            .map_err(|e| err(&self.path, e))?;
        if self.sync {
            self.file.sync_data().map_err(|e| err(&self.path, e))?;
        }
        if self.buf.capacity() > 4 * 1024 * 1024 {
            self.buf = Vec::with_capacity(64 * 1024);
        }
        Ok(records.len())
    }
}

/// Reads `path` line by line, handing each record in `range` to `f` (which returns false to
/// stop). Bad lines are skipped and reported in `warnings` as `path:line: why`. `progress`
/// gets the bytes read so far, now and then.
pub fn for_each(
    path: &Path,
    range: &TimeRange,
    warnings: &mut Vec<String>,
    progress: &mut dyn FnMut(u64),
    f: &mut dyn FnMut(CallRecord) -> bool,
) -> Result<()> {
    let file = File::open(path).map_err(|e| err(path, e))?;
    let reader = BufReader::with_capacity(1 << 20, file);
    read_lines(reader, path, range, warnings, progress, f)
}

/// [`for_each`] over any reader of JSONL text; `path` names it in warnings and errors.
pub fn read_lines(
    mut reader: impl BufRead,
    path: &Path,
    range: &TimeRange,
    warnings: &mut Vec<String>,
    progress: &mut dyn FnMut(u64),
    f: &mut dyn FnMut(CallRecord) -> bool,
) -> Result<()> {
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut bytes = 0u64;
    let mut bad = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| err(path, e))?;
        if n == 0 {
            break;
        }
        number += 1;
        bytes += n as u64;
        if number.is_multiple_of(65_536) {
            progress(bytes);
        }
        let Ok(text) = std::str::from_utf8(&line).map(str::trim) else {
            bad += 1;
            if bad <= 100 {
                warnings.push(format!(
                    "{}:{number}: not UTF-8 text; line skipped",
                    path.display()
                ));
            }
            continue;
        };
        if text.is_empty() {
            continue;
        }
        match parse_json_line(text) {
            Ok(rec) => {
                if range.contains(&rec.time) && !f(rec) {
                    break;
                }
            }
            Err(why) => {
                bad += 1;
                if bad <= 100 {
                    warnings.push(format!("{}:{number}: {why}; line skipped", path.display()));
                }
            }
        }
    }
    if bad > 100 {
        warnings.push(format!(
            "{}: {bad} bad lines in all (the first 100 are listed)",
            path.display()
        ));
    }
    progress(bytes);
    Ok(())
}
