//! The JSONL ledger reader (`llmledger report` / `export` / `import` of a JSONL ledger, and
//! budgets resuming their windows from one) on any file content: never a panic; every line
//! is a record, a blank line or a warning naming its line; a record read back holds no
//! negative amount; writing a record and reading it back is stable; and the report's totals
//! are the exact sums of the records read.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use llmledger::money::Decimal;
use llmledger::store::jsonl::JsonlReader;
use llmledger::store::record::{parse_json_line, write_json_line};
use llmledger::store::TimeRange;
use llmledger::{CallRecord, Totals};

fn check_record(r: &CallRecord) {
    if let Some(c) = &r.cost {
        for part in c.parts().into_iter().chain([c.total]) {
            assert!(!part.is_sign_negative(), "negative amount {part} read");
        }
    }
    // Written out and read back, then again: the second trip changes nothing.
    let mut once = Vec::new();
    write_json_line(r, &mut once);
    let text = std::str::from_utf8(&once).unwrap();
    let back = parse_json_line(text.trim_end())
        .unwrap_or_else(|e| panic!("a written record does not read back: {e}\n{text}"));
    let mut twice = Vec::new();
    write_json_line(&back, &mut twice);
    assert_eq!(text, std::str::from_utf8(&twice).unwrap());
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.jsonl");
    let mut reader = JsonlReader::from_reader(
        Box::new(std::io::Cursor::new(data.to_vec())),
        path,
        TimeRange::default(),
    );
    let mut records = Vec::new();
    while let Some(r) = reader
        .next_record()
        .expect("reading from memory cannot fail")
    {
        records.push(r);
    }
    let warnings = reader.take_warnings();
    let lines = data
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert!(records.len() + warnings.len() <= lines + 1);
    assert!(warnings.iter().all(|w| w.starts_with("fuzz.jsonl:")));
    let mut totals = Totals::default();
    let mut sum = Decimal::ZERO;
    for r in &records {
        check_record(r);
        totals.add(r);
        if let Some(c) = &r.cost {
            sum = sum
                .checked_add(c.total)
                .expect("record costs overflow their sum");
        }
    }
    assert_eq!(totals.cost, sum);
    assert_eq!(
        totals.successful_requests + totals.failed_requests,
        records.len() as u64
    );
});
