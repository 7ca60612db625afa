//! The advice over a ledger: its records read on a thread of their own while the rules take
//! them.

use std::sync::Arc;

use super::{Advice, Advisor, Options};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::ledger::CallRecord;
use crate::store::reader::{open_reader_columns, Columns};
use crate::store::{Format, Location, TimeRange};

/// Records per batch sent from the reader thread: small enough that a batch is still in the
/// cache the two threads share when the rules take it.
const BATCH: usize = 512;
/// Batches the reader may be ahead of the rules.
const AHEAD: usize = 4;

/// The advice over the calls of the ledger at `location` in `range`, read through the
/// ledger's reader (any backend). Returns it with the problems met reading (bad JSONL lines).
///
/// Reading and advising run side by side: a reader thread decodes batches of records (only
/// the columns the rules read) while this thread hands the previous batch to the rules. The
/// batches go back to the reader, which drops the records it made and fills the vector again.
///
/// SQLite and PostgreSQL ledgers are read in time order, so their advisor forgets old calls
/// early ([`Advisor::time_ordered`]); should a SQLite ledger's stored times not sort as times
/// (text written by hand), the read starts over with [`Advisor::new`].
pub fn advise_ledger(
    location: &Location,
    range: &TimeRange,
    catalog: Arc<Catalog>,
    options: Options,
    progress: &mut dyn FnMut(u64),
) -> Result<(Advice, Vec<String>)> {
    let ordered = !matches!(
        location,
        Location::File {
            format: Format::Jsonl,
            ..
        }
    );
    if ordered {
        let advisor = Advisor::time_ordered(catalog.clone(), options.clone());
        let (advisor, warnings) = read_into(location, range, advisor, progress)?;
        if !advisor.disordered() {
            return Ok((advisor.finish(), warnings));
        }
    }
    let advisor = Advisor::new(catalog, options);
    let (advisor, warnings) = read_into(location, range, advisor, progress)?;
    Ok((advisor.finish(), warnings))
}

enum Msg {
    Batch(Vec<CallRecord>),
    Progress(u64),
}

/// Every record of the ledger through `advisor` (a time-ordered one stops at the first call
/// out of order: its advice is not wanted then).
fn read_into(
    location: &Location,
    range: &TimeRange,
    mut advisor: Advisor,
    progress: &mut dyn FnMut(u64),
) -> Result<(Advisor, Vec<String>)> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(AHEAD);
    let (back_tx, back_rx) = std::sync::mpsc::sync_channel::<Vec<CallRecord>>(AHEAD + 2);
    let stop_early = advisor.is_time_ordered();
    let read = std::thread::scope(|s| {
        let reader = s.spawn(move || {
            let mut source = open_reader_columns(location, *range, Columns::Advise)?;
            let mut warnings = Vec::new();
            loop {
                let mut batch = match back_rx.try_recv() {
                    Ok(mut done) => {
                        done.clear();
                        done
                    }
                    Err(_) => Vec::with_capacity(BATCH),
                };
                source.next_batch(BATCH, &mut batch)?;
                warnings.extend(source.take_warnings());
                if batch.is_empty() {
                    break;
                }
                let _ = tx.send(Msg::Progress(source.progress()));
                // The advisor hung up: it panicked, or needs no more.
                if tx.send(Msg::Batch(batch)).is_err() {
                    break;
                }
            }
            let _ = tx.send(Msg::Progress(source.progress()));
            Ok::<_, Error>(warnings)
        });
        for msg in rx {
            match msg {
                Msg::Batch(records) => {
                    for r in &records {
                        advisor.add(r);
                    }
                    // The reader drops them, as it made them: their memory and shared
                    // names stay with that thread.
                    let _ = back_tx.try_send(records);
                    if stop_early && advisor.disordered() {
                        break;
                    }
                }
                Msg::Progress(n) => progress(n),
            }
        }
        reader.join()
    });
    let warnings = match read {
        Ok(result) => result?,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    Ok((advisor, warnings))
}
