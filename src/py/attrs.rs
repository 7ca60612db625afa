//! The fields of LangChain's objects (messages, `LLMResult`, generations), read from their
//! instance `__dict__` when their class allows it.
//!
//! LangChain's objects are pydantic models: their fields live in the instance `__dict__`, and
//! `message.content` finds them there only after CPython's attribute protocol has gone through
//! the class (pydantic's `__getattr__` hook, `__getattribute__`, a look-up of the name along the
//! MRO), about 360 instructions a field. A start that fingerprints or counts its prompt reads
//! three or four fields of every message, and every end reads four along the response, so the
//! readers take an object's instance `__dict__` once ([`install`]ed: `hooks::instance_dict`)
//! and look the fields up in it.
//!
//! That gives what `getattr` gives only when the class does not override `__getattribute__`,
//! keeps the standard `__dict__` descriptor, and has no data descriptor (a property, a slot)
//! named like a field anywhere on its MRO: such a descriptor would win over the instance
//! `__dict__`. Each class is checked once ([`MAX_CLASSES`] of them are remembered, each held
//! so that its address is never another's); a field missing from the `__dict__`, a class that
//! fails the check, or one beyond those remembered is read with `getattr` as before. A class
//! changed after its check (a property added to it at run time) is not seen.

use std::sync::{Mutex, OnceLock, PoisonError};

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyType};

/// How an object's instance `__dict__` is read without the attribute protocol.
type DictOf = for<'py> fn(&Bound<'py, PyAny>) -> Option<Bound<'py, PyDict>>;

/// The reader of instance `__dict__`s: `hooks::instance_dict`, handed over by the module's
/// initialisation (the crate's `unsafe` code stays in `hooks.rs`, which this room does not
/// import). Until then (Rust unit tests) every field is read through `getattr`.
static INSTANCE_DICT: OnceLock<DictOf> = OnceLock::new();

/// Installs the reader of instance `__dict__`s (once, at the module's initialisation).
pub fn install(dict_of: DictOf) {
    let _ = INSTANCE_DICT.set(dict_of);
}

/// The fields the readers take through [`Attrs`]: a message's, a generation's, a response's.
const FIELDS: [&str; 9] = [
    "type",
    "role",
    "name",
    "content",
    "tool_calls",
    "usage_metadata",
    "response_metadata",
    "message",
    "generations",
];

/// Classes remembered at most (LangChain has about a dozen message classes, and a few
/// result and generation classes).
pub const MAX_CLASSES: usize = 64;

/// The classes checked: each, held, with whether its fields may be read from the `__dict__`.
/// Taken only by a thread attached to Python and never across a call into Python.
static CLASSES: Mutex<Vec<(Py<PyType>, bool)>> = Mutex::new(Vec::new());

/// Whether `ty` passes the check (remembered), or `None` when it is not remembered.
fn remembered(ty: &Bound<'_, PyType>) -> Option<bool> {
    let classes = CLASSES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, plain)) = classes.iter().find(|(t, _)| t.as_ptr() == ty.as_ptr()) {
        return Some(*plain);
    }
    (classes.len() >= MAX_CLASSES).then_some(false)
}

/// What a look-up of `name` along `mro` finds: the first class that defines it decides.
fn first_on_mro<'py>(
    mro: &Bound<'py, PyAny>,
    name: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let dict_name = intern!(mro.py(), "__dict__");
    for cls in mro.try_iter()? {
        let ns = cls?.getattr(dict_name)?;
        if ns.contains(name)? {
            return Ok(Some(ns.get_item(name)?));
        }
    }
    Ok(None)
}

/// Whether `ty`'s instances give their fields' `getattr` from the `__dict__` (see the module).
fn check(ty: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = ty.py();
    let object = py.get_type::<PyAny>();
    let getattribute = intern!(py, "__getattribute__");
    if !ty.getattr(getattribute)?.is(&object.getattr(getattribute)?) {
        return Ok(false);
    }
    let mro = ty.getattr(intern!(py, "__mro__"))?;
    let dict_name = intern!(py, "__dict__");
    // The standard `__dict__` descriptor (a getset descriptor of the interpreter's), nothing
    // a class defined itself.
    match first_on_mro(&mro, dict_name)? {
        Some(d) if d.get_type().name()?.to_str()? == "getset_descriptor" => {}
        _ => return Ok(false),
    }
    for field in FIELDS {
        if let Some(attr) = first_on_mro(&mro, &PyString::new(py, field))? {
            let kind = attr.get_type();
            if kind.hasattr(intern!(py, "__set__"))? || kind.hasattr(intern!(py, "__delete__"))? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Whether `ty`'s fields may be read from its instances' `__dict__` (checked once).
fn plain(ty: &Bound<'_, PyType>) -> bool {
    if let Some(plain) = remembered(ty) {
        return plain;
    }
    let plain = check(ty).unwrap_or(false);
    let mut classes = CLASSES.lock().unwrap_or_else(PoisonError::into_inner);
    if classes.len() < MAX_CLASSES && !classes.iter().any(|(t, _)| t.as_ptr() == ty.as_ptr()) {
        classes.push((ty.clone().unbind(), plain));
    }
    plain
}

/// An object's fields: from its `__dict__` where that gives what `getattr` would, else
/// through `getattr`.
pub struct Attrs<'a, 'py> {
    obj: &'a Bound<'py, PyAny>,
    dict: Option<Bound<'py, PyDict>>,
}

impl<'a, 'py> Attrs<'a, 'py> {
    /// The fields of `obj`.
    pub fn of(obj: &'a Bound<'py, PyAny>) -> Self {
        let dict = match INSTANCE_DICT.get() {
            Some(dict_of) if plain(&obj.get_type()) => dict_of(obj),
            _ => None,
        };
        Attrs { obj, dict }
    }

    /// The field `name` (one of [`FIELDS`], interned), `None` when the object has none.
    pub fn get(&self, name: &Bound<'py, PyString>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if let Some(d) = &self.dict {
            if let Some(v) = d.get_item(name)? {
                return Ok(Some(v));
            }
        }
        self.obj.getattr_opt(name)
    }
}
