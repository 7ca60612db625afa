//! The JSONL ledger: one JSON object per line, appended with `O_APPEND` and one `write` per
//! batch, so several processes can append to one file without interleaving lines (on local
//! file systems). Nothing is ever rewritten: a line that does not parse is reported with its
//! number and skipped, and a torn last line left by a crash is closed with a newline before the
//! next append so it cannot swallow the next record.

use std::fs::File;
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
        // A new ledger is readable by its owner only (it names users and what they spent).
        let mut file = super::private::open_private(path).map_err(|e| err(path, e))?;
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

impl std::fmt::Debug for JsonlReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlReader")
            .field("path", &self.path)
            .field("lines_read", &self.number)
            .finish_non_exhaustive()
    }
}

/// Bad lines listed by name, at most; beyond, one line counts them.
const MAX_LISTED_BAD_LINES: u64 = 100;

/// Reads a JSONL ledger record by record, in file order: the lines the file had when it was
/// opened (lines appended meanwhile are left for the next read). Bad lines are skipped and
/// reported as `path:line: why`.
pub struct JsonlReader {
    reader: Box<dyn BufRead + Send>,
    path: PathBuf,
    range: TimeRange,
    line: Vec<u8>,
    number: u64,
    bytes: u64,
    bad: u64,
    warnings: Vec<String>,
    done: bool,
}

impl JsonlReader {
    /// Opens `path` for reading the records in `range`.
    pub fn open(path: &Path, range: TimeRange) -> Result<Self> {
        let file = File::open(path).map_err(|e| err(path, e))?;
        let len = file.metadata().map_err(|e| err(path, e))?.len();
        let reader = BufReader::with_capacity(1 << 20, file.take(len));
        Ok(Self::from_reader(Box::new(reader), path, range))
    }

    /// Reads the records in `range` from any JSONL text (the fuzz target reads memory);
    /// `path` names it in warnings and errors.
    pub fn from_reader(reader: Box<dyn BufRead + Send>, path: &Path, range: TimeRange) -> Self {
        JsonlReader {
            reader,
            path: path.to_path_buf(),
            range,
            line: Vec::new(),
            number: 0,
            bytes: 0,
            bad: 0,
            warnings: Vec::new(),
            done: false,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Lines read so far.
    pub fn lines_read(&self) -> u64 {
        self.number
    }

    /// Problems met so far, taken once each.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    fn bad_line(&mut self, why: &str) {
        self.bad += 1;
        if self.bad <= MAX_LISTED_BAD_LINES {
            self.warnings.push(format!(
                "{}:{}: {why}; line skipped",
                self.path.display(),
                self.number
            ));
        }
    }

    /// The next record in range, or `None` at the end of the file.
    pub fn next_record(&mut self) -> Result<Option<CallRecord>> {
        while !self.done {
            self.line.clear();
            let n = self
                .reader
                .read_until(b'\n', &mut self.line)
                .map_err(|e| err(&self.path, e))?;
            if n == 0 {
                self.done = true;
                if self.bad > MAX_LISTED_BAD_LINES {
                    self.warnings.push(format!(
                        "{}: {} bad lines in all (the first {MAX_LISTED_BAD_LINES} are listed)",
                        self.path.display(),
                        self.bad
                    ));
                }
                break;
            }
            self.number += 1;
            self.bytes += n as u64;
            let parsed = match std::str::from_utf8(&self.line).map(str::trim) {
                Err(_) => Err("not UTF-8 text".to_string()),
                Ok("") => continue,
                Ok(text) => parse_json_line(text),
            };
            match parsed {
                Ok(rec) if self.range.contains(&rec.time) => return Ok(Some(rec)),
                Ok(_) => {}
                Err(why) => self.bad_line(&why),
            }
        }
        Ok(None)
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
    let mut reader = JsonlReader::open(path, *range)?;
    let mut reported = 0u64;
    while let Some(rec) = reader.next_record()? {
        if reader.lines_read() >= reported + 65_536 {
            reported = reader.lines_read();
            progress(reader.bytes_read());
        }
        if !f(rec) {
            break;
        }
    }
    warnings.extend(reader.take_warnings());
    progress(reader.bytes_read());
    Ok(())
}
