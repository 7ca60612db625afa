//! Reading one token count, and remembering which usage fields a response got wrong.
//!
//! A count is valid when it is a whole number from 0 to [`MAX_COUNT`]: an `int`, an object
//! with `__index__` (`numpy.int64`, ...), or a whole `float` (some JSON decoders give
//! `12.0`). Anything else (a bool, a negative or implausibly large number, NaN, a fraction, a
//! string, ...) is malformed: it is reported with the field's dotted name and never used as a
//! number; the field joins [`Reader::bad`], and the tracker counts that field itself from the
//! text, or records it as unknown (see `Tracker::end`). `None` is the same as absent.

use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt};

use crate::usage::{Field, Fields};

/// Counts above this are rejected as implausible (a trillion tokens in one call).
pub(super) const MAX_COUNT: u64 = 1_000_000_000_000;
#[allow(clippy::cast_possible_wrap)]
pub(super) const MAX_COUNT_I64: i64 = MAX_COUNT as i64;

/// What reading a response's usage found wrong: the warnings to log, and the usage fields
/// whose counts were malformed (or, for input and output, missing).
pub(super) struct Reader<'w> {
    pub warnings: &'w mut Vec<String>,
    pub bad: Fields,
}

impl Reader<'_> {
    /// The count of usage field `which`, found at `name`: 0 when absent. A malformed value is
    /// reported and counts 0, and `which` joins [`Reader::bad`].
    #[inline]
    pub fn count(
        &mut self,
        v: Option<Bound<'_, PyAny>>,
        name: impl FieldName,
        which: Field,
    ) -> u64 {
        let Some(v) = v else { return 0 };
        if v.is_exact_instance_of::<PyInt>() {
            // The usual case: a plain int that fits (anything else is checked below).
            if let Ok(n @ 0..=MAX_COUNT_I64) = v.extract::<i64>() {
                return n.unsigned_abs();
            }
        }
        if v.is_none() {
            return 0;
        }
        if let Some(n) = count_other(&v, &name, self.warnings) {
            n
        } else {
            self.bad.insert(which);
            0
        }
    }

    /// [`Reader::count`] of a whole (input or output tokens) the source must give: when it
    /// is absent too, it is reported and `which` joins [`Reader::bad`].
    #[inline]
    pub fn required(
        &mut self,
        v: Option<Bound<'_, PyAny>>,
        name: impl FieldName,
        which: Field,
    ) -> u64 {
        if v.is_none() {
            self.missing(&name, which);
            return 0;
        }
        self.count(v, name, which)
    }

    #[cold]
    #[inline(never)]
    fn missing(&mut self, name: &dyn FieldName, which: Field) {
        self.bad.insert(which);
        self.warnings.push(format!(
            "malformed usage: field '{}' is missing",
            name.name()
        ));
    }

    /// Adds a warning (out of line: malformed input is rare).
    #[cold]
    #[inline(never)]
    pub fn warn(&mut self, message: &str) {
        self.warnings.push(message.to_string());
    }
}

/// A count that is not a plain int in range: kept out of line, it is rare and long. `None`
/// (after a warning) when it is not a valid count.
#[cold]
#[inline(never)]
fn count_other(
    v: &Bound<'_, PyAny>,
    field: &dyn FieldName,
    warnings: &mut Vec<String>,
) -> Option<u64> {
    // The field's name is only built when there is something to report.
    let bad = |what: String, warnings: &mut Vec<String>| {
        warnings.push(format!(
            "malformed usage: field '{}' {what}; the provider's count is not used",
            field.name()
        ));
        None
    };
    if v.is_instance_of::<PyBool>() {
        return bad("is a bool".into(), warnings);
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        let x = f.value();
        #[allow(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= MAX_COUNT as f64 {
            return Some(x as u64);
        }
        return bad(
            format!("is not a whole non-negative number ({x})"),
            warnings,
        );
    }
    // An int, an int subclass, or anything with `__index__` (numpy's integers): CPython's
    // integer conversion calls `__index__` and nothing else (not `__int__`, since 3.10).
    match v.extract::<i64>() {
        Ok(n) if n < 0 => bad(format!("is negative ({n})"), warnings),
        Ok(n) if n.unsigned_abs() > MAX_COUNT => {
            bad(format!("is implausibly large ({n})"), warnings)
        }
        Ok(n) => Some(n.unsigned_abs()),
        Err(e) if e.is_instance_of::<PyOverflowError>(v.py()) => {
            bad("is too large for a token count".into(), warnings)
        }
        Err(_) => {
            let shown = v
                .repr()
                .map(|r| shorten(&r.to_string()))
                .unwrap_or_default();
            let tyname = v
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default();
            bad(format!("is a {tyname} ({shown}), not an integer"), warnings)
        }
    }
}

/// A value's `repr` for a warning, at most 80 characters.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

/// A usage field's dotted name, built lazily (only warnings need it).
pub(super) trait FieldName {
    fn name(&self) -> String;
}

impl FieldName for str {
    fn name(&self) -> String {
        self.to_string()
    }
}

/// `prefix.key`, joined only when a warning needs it.
pub(super) struct Joined<'a>(pub &'a str, pub &'a str);

impl FieldName for Joined<'_> {
    fn name(&self) -> String {
        format!("{}.{}", self.0, self.1)
    }
}

impl<T: FieldName + ?Sized> FieldName for &T {
    fn name(&self) -> String {
        (*self).name()
    }
}
