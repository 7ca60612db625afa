//! Python values as JSON: tool definitions and tool-call arguments, rendered as the text the
//! provider is sent (counted and fingerprinted as such).

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::Value;

use crate::py::extract::text_of;

/// Nesting deeper than this in a tool schema or arguments is cut (malformed or hostile input).
const MAX_JSON_DEPTH: usize = 64;

/// A Python value as JSON (dicts, lists, tuples, str, int, float, bool, None; anything else
/// through `str()`).
pub fn json_of(v: &Bound<'_, PyAny>) -> Value {
    json_at(v, 0)
}

fn json_at(v: &Bound<'_, PyAny>, depth: usize) -> Value {
    if v.is_none() || depth > MAX_JSON_DEPTH {
        return Value::Null;
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Value::String(s.to_str().map(str::to_string).unwrap_or_default());
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Value::Bool(b.is_true());
    }
    if v.cast::<PyInt>().is_ok() {
        if let Ok(i) = v.extract::<i64>() {
            return Value::from(i);
        }
        return Value::String(text_of(v).unwrap_or_default());
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return serde_json::Number::from_f64(f.value()).map_or(Value::Null, Value::Number);
    }
    if let Ok(d) = v.cast::<PyDict>() {
        return Value::Object(
            d.iter()
                .map(|(k, v)| (text_of(&k).unwrap_or_default(), json_at(&v, depth + 1)))
                .collect(),
        );
    }
    if let Ok(l) = v.cast::<PyList>() {
        return Value::Array(l.iter().map(|x| json_at(&x, depth + 1)).collect());
    }
    if let Ok(t) = v.cast::<PyTuple>() {
        return Value::Array(t.iter().map(|x| json_at(&x, depth + 1)).collect());
    }
    Value::String(text_of(v).unwrap_or_default())
}
