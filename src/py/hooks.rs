//! LangChain's hooks as builtin functions bound to a tracker, called with the fastcall
//! convention.
//!
//! LangChain calls a handler's hook as `getattr(handler, name)(response, run_id=...,
//! parent_run_id=..., tags=..., **kwargs)`. A hook must accept keywords it does not know
//! (LangChain adds some over time), and PyO3 gives a method with `**kwargs` the tuple-and-dict
//! calling convention: Python builds a tuple and a dict for every call and PyO3 parses the
//! dict, which measured about 240 ns of an `on_llm_end` that otherwise takes about 760 ns.
//! These hooks are `METH_FASTCALL | METH_KEYWORDS` functions instead: they read the keywords
//! they need straight from the call's argument array and ignore the others (the start hooks
//! read `invocation_params` and `name` as keywords too: no dict is built for a call).
//!
//! Each function's `self` is the `llmledger._core.Tracker` it was bound to by [`bind_hook`].
//!
//! This is the crate's only `unsafe` code (the crate denies it elsewhere): CPython's argument
//! array, the GIL token CPython's call implies, the function objects' static definitions, and
//! [`instance_dict`] (what the hooks read a LangChain message's fields from). Every block
//! states what makes it sound.
#![allow(unsafe_code)]

use std::panic::AssertUnwindSafe;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyString, PyTuple};

use super::errors::BudgetExceededError;
use super::tracker::{PyTracker, Start};

/// The keywords hooks read.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kw {
    RunId,
    ParentRunId,
    Tags,
    Metadata,
    Response,
    Token,
    Chunk,
    Name,
    InvocationParams,
}

const KEYWORDS: [(Kw, &str); 9] = [
    (Kw::RunId, "run_id"),
    (Kw::ParentRunId, "parent_run_id"),
    (Kw::Tags, "tags"),
    (Kw::Metadata, "metadata"),
    (Kw::Response, "response"),
    (Kw::Token, "token"),
    (Kw::Chunk, "chunk"),
    (Kw::Name, "name"),
    (Kw::InvocationParams, "invocation_params"),
];

/// The keyword names as interned strings: a call's keyword names are interned constants of
/// the caller's code, so a pointer comparison nearly always finds them.
fn interned(py: Python<'_>) -> &[Py<PyString>; 9] {
    static NAMES: PyOnceLock<[Py<PyString>; 9]> = PyOnceLock::new();
    NAMES.get_or_init(py, || {
        KEYWORDS.map(|(_, name)| PyString::intern(py, name).unbind())
    })
}

/// Which known keyword `name` is, if any.
fn keyword(py: Python<'_>, name: &Bound<'_, PyAny>) -> Option<Kw> {
    let names = interned(py);
    if let Some(i) = names.iter().position(|n| n.as_ptr() == name.as_ptr()) {
        return Some(KEYWORDS[i].0);
    }
    let text = name.cast::<PyString>().ok()?.to_str().ok()?;
    KEYWORDS.iter().find(|(_, n)| *n == text).map(|(k, _)| *k)
}

/// What a hook takes: its leading positional arguments (named for messages) and the keywords
/// it reads (every other keyword is ignored).
struct Spec {
    name: &'static str,
    positional: &'static [&'static str],
    reads: &'static [Kw],
}

/// A call's arguments, borrowed from the caller for the length of the call.
struct Args<'a, 'py> {
    positional: [Option<Borrowed<'a, 'py, PyAny>>; 2],
    keywords: [Option<Borrowed<'a, 'py, PyAny>>; 9],
}

impl<'py> Args<'_, 'py> {
    fn get(&self, kw: Kw) -> Option<&Bound<'py, PyAny>> {
        self.keywords[kw as usize].as_deref()
    }

    fn positional(&self, i: usize) -> Option<&Bound<'py, PyAny>> {
        self.positional[i].as_deref()
    }

    /// The `i`th positional argument, which the hook requires.
    fn required(&self, spec: &Spec, i: usize) -> PyResult<&Bound<'py, PyAny>> {
        self.positional(i).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "{}() missing required positional argument: '{}'",
                spec.name, spec.positional[i]
            ))
        })
    }

    fn run_id(&self, spec: &Spec) -> PyResult<&Bound<'py, PyAny>> {
        self.get(Kw::RunId).ok_or_else(|| {
            PyTypeError::new_err(format!(
                "{}() missing required keyword argument: 'run_id'",
                spec.name
            ))
        })
    }
}

/// Reads a fastcall's arguments as `spec` says.
///
/// # Safety
/// `args` holds `nargs` positional arguments followed by one value per name in `kwnames`
/// (a tuple of strings, or null), all valid for `'a`: what CPython passes a
/// `METH_FASTCALL | METH_KEYWORDS` function.
unsafe fn parse<'a, 'py>(
    py: Python<'py>,
    spec: &Spec,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
) -> PyResult<Args<'a, 'py>> {
    let nargs = usize::try_from(nargs).unwrap_or(0);
    if nargs > spec.positional.len() {
        return Err(PyTypeError::new_err(format!(
            "{}() takes {} positional arguments but {nargs} were given",
            spec.name,
            spec.positional.len()
        )));
    }
    let mut out = Args {
        positional: [None, None],
        keywords: [None; 9],
    };
    for (i, slot) in out.positional.iter_mut().enumerate().take(nargs) {
        // SAFETY: the caller passes `nargs` valid positional arguments.
        *slot = Some(unsafe { Borrowed::from_ptr(py, *args.add(i)) });
    }
    // SAFETY: `kwnames` is a tuple or null.
    let Some(names) = (unsafe { Borrowed::from_ptr_or_opt(py, kwnames) }) else {
        return Ok(out);
    };
    // SAFETY: CPython passes a tuple.
    let names = unsafe { names.cast_unchecked::<PyTuple>() };
    for (i, name) in names.iter_borrowed().enumerate() {
        // SAFETY: one value follows the positional arguments per keyword name.
        let value = unsafe { Borrowed::from_ptr(py, *args.add(nargs + i)) };
        if let Some(k) = keyword(py, &name).filter(|k| spec.reads.contains(k)) {
            out.keywords[k as usize] = Some(value);
        }
    }
    Ok(out)
}

/// The instance `__dict__` of `obj` (CPython's `PyObject_GenericGetDict`: what `obj.__dict__`
/// gives for a class that keeps the standard `__dict__` descriptor), without the attribute
/// look-up through the class (`__getattribute__`, `__getattr__`, the MRO) that `obj.__dict__`
/// costs; `None` for an object without one. The caller checks that the class allows reading
/// its fields there (`tokens::fields`).
pub(crate) fn instance_dict<'py>(obj: &Bound<'py, PyAny>) -> Option<Bound<'py, PyDict>> {
    let py = obj.py();
    // SAFETY: `obj` is a live object and the thread is attached (a `Bound`); the function
    // returns a new reference, or null with an exception set.
    let dict = unsafe { ffi::PyObject_GenericGetDict(obj.as_ptr(), std::ptr::null_mut()) };
    // SAFETY: `dict` is an owned reference or null.
    let dict = unsafe { Bound::from_owned_ptr_or_opt(py, dict) };
    if dict.is_none() {
        drop(PyErr::take(py));
    }
    dict.and_then(|d| d.cast_into::<PyDict>().ok())
}

/// A hook's work once its arguments are read.
type Body = fn(&PyTracker, Python<'_>, &Spec, &Args<'_, '_>) -> PyResult<()>;

/// The text of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Runs a hook called by CPython: reads the arguments and runs `body`. This is the hooks'
/// one guard: nothing gets into the application but a deliberate budget stop
/// (`BudgetExceededError`, set as the Python exception, null returned); any other error — bad
/// arguments included — or a panic is logged on the `llmledger` logger and counted
/// (`Tracker.internal_errors`), and the LLM call goes on (`None` returned).
///
/// The thread is attached through PyO3's `Python::attach` (CPython holds the GIL for the
/// call, so it only records that), not `assume_attached`: PyO3 then knows the thread is
/// attached, and a Python reference dropped in the hook is released at once instead of
/// waiting in PyO3's global pool for the next PyO3 entry (a zero-code tracker may see
/// nothing but hook calls for the process's life).
///
/// # Safety
/// What CPython passes a `METH_FASTCALL | METH_KEYWORDS` function whose `self` is a
/// `PyTracker` (as [`bind_hook`] makes them).
unsafe fn call(
    slf: *mut ffi::PyObject,
    args: *const *mut ffi::PyObject,
    nargs: ffi::Py_ssize_t,
    kwnames: *mut ffi::PyObject,
    spec: &Spec,
    body: Body,
) -> *mut ffi::PyObject {
    Python::attach(|py| {
        // SAFETY: `bind_hook` made `slf` this function's self, a live `PyTracker`.
        let tracker = unsafe { Borrowed::from_ptr(py, slf).cast_unchecked::<PyTracker>() };
        let tracker = tracker.get();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
            // SAFETY: the caller's contract.
            let parsed = unsafe { parse(py, spec, args, nargs, kwnames) }?;
            body(tracker, py, spec, &parsed)
        }));
        match outcome {
            Ok(Ok(())) => py.None().into_ptr(),
            Ok(Err(e)) if e.is_instance_of::<BudgetExceededError>(py) => {
                e.restore(py);
                std::ptr::null_mut()
            }
            Ok(Err(e)) => {
                tracker.internal_error(py, spec.name, &e.to_string());
                py.None().into_ptr()
            }
            Err(panic) => {
                tracker.internal_error(py, spec.name, &panic_text(&*panic));
                py.None().into_ptr()
            }
        }
    })
}

fn start(t: &PyTracker, py: Python<'_>, spec: &Spec, a: &Args<'_, '_>) -> PyResult<()> {
    let call = Start {
        serialized: a.positional(0),
        inputs: Some(a.required(spec, 1)?),
        run_id: a.run_id(spec)?,
        parent_run_id: a.get(Kw::ParentRunId),
        tags: a.get(Kw::Tags),
        metadata: a.get(Kw::Metadata),
        invocation_params: a.get(Kw::InvocationParams),
        name: a.get(Kw::Name),
        completion: spec.name == "on_llm_start",
    };
    t.on_start(py, &call)
}

fn token(t: &PyTracker, py: Python<'_>, spec: &Spec, a: &Args<'_, '_>) -> PyResult<()> {
    let token = a.positional(0).or_else(|| a.get(Kw::Token));
    t.on_token(py, a.run_id(spec)?, token, a.get(Kw::Chunk))
}

fn end(t: &PyTracker, py: Python<'_>, spec: &Spec, a: &Args<'_, '_>) -> PyResult<()> {
    let response = a.required(spec, 0)?;
    t.on_end(
        py,
        response,
        a.run_id(spec)?,
        a.get(Kw::ParentRunId),
        a.get(Kw::Tags),
    )
}

fn error(t: &PyTracker, py: Python<'_>, spec: &Spec, a: &Args<'_, '_>) -> PyResult<()> {
    let error = a.required(spec, 0)?;
    let run_id = a.run_id(spec)?;
    t.on_error(
        py,
        error,
        run_id,
        a.get(Kw::ParentRunId),
        a.get(Kw::Tags),
        a.get(Kw::Response),
    )
}

fn chain_start(t: &PyTracker, _py: Python<'_>, spec: &Spec, a: &Args<'_, '_>) -> PyResult<()> {
    let run_id = a.run_id(spec)?;
    t.on_chain_start(
        a.positional(0),
        run_id,
        a.get(Kw::ParentRunId),
        a.get(Kw::Name),
    )
}

fn chain_end(t: &PyTracker, _py: Python<'_>, spec: &Spec, a: &Args<'_, '_>) -> PyResult<()> {
    t.on_chain_end(a.run_id(spec)?)
}

/// Defines a hook: its spec, its `extern "C"` entry point and its method definition.
macro_rules! hooks {
    ($($name:literal => $fn:ident, $doc:literal, ($($pos:literal),*), [$($kw:ident),*], $body:ident;)*) => {
        $(
            /// The hook's entry point.
            ///
            /// # Safety
            /// Called by CPython as a `METH_FASTCALL | METH_KEYWORDS` function bound by
            /// [`bind_hook`].
            #[allow(non_snake_case)]
            unsafe extern "C" fn $fn(
                slf: *mut ffi::PyObject,
                args: *const *mut ffi::PyObject,
                nargs: ffi::Py_ssize_t,
                kwnames: *mut ffi::PyObject,
            ) -> *mut ffi::PyObject {
                const SPEC: Spec = Spec {
                    name: $name,
                    positional: &[$($pos),*],
                    reads: &[$(Kw::$kw),*],
                };
                // SAFETY: CPython's contract for this calling convention.
                unsafe { call(slf, args, nargs, kwnames, &SPEC, $body) }
            }
        )*

        /// Method definitions, by hook name.
        static DEFS: &[(&str, MethodDef)] = &[
            $((
                $name,
                MethodDef(ffi::PyMethodDef {
                    ml_name: concat!($name, "\0").as_ptr().cast(),
                    ml_meth: ffi::PyMethodDefPointer { PyCFunctionFastWithKeywords: $fn },
                    ml_flags: ffi::METH_FASTCALL | ffi::METH_KEYWORDS,
                    ml_doc: concat!($doc, "\0").as_ptr().cast(),
                }),
            )),*
        ];
    };
}

/// A method definition CPython keeps a pointer to: immutable and `'static`.
struct MethodDef(ffi::PyMethodDef);

// SAFETY: the definitions are never written to; their pointers are to static strings and
// functions.
unsafe impl Sync for MethodDef {}

hooks! {
    "on_chat_model_start" => ON_CHAT_MODEL_START,
        "LangChain's on_chat_model_start, bound to a llmledger tracker.",
        ("serialized", "messages"), [RunId, ParentRunId, Tags, Metadata, InvocationParams, Name], start;
    "on_llm_start" => ON_LLM_START,
        "LangChain's on_llm_start, bound to a llmledger tracker.",
        ("serialized", "prompts"), [RunId, ParentRunId, Tags, Metadata, InvocationParams, Name], start;
    "on_llm_new_token" => ON_LLM_NEW_TOKEN,
        "LangChain's on_llm_new_token, bound to a llmledger tracker.",
        ("token"), [Token, Chunk, RunId], token;
    "on_llm_end" => ON_LLM_END,
        "LangChain's on_llm_end, bound to a llmledger tracker.",
        ("response"), [RunId, ParentRunId, Tags], end;
    "on_llm_error" => ON_LLM_ERROR,
        "LangChain's on_llm_error, bound to a llmledger tracker.",
        ("error"), [RunId, ParentRunId, Tags, Response], error;
    "on_chain_start" => ON_CHAIN_START,
        "LangChain's on_chain_start (and tool and retriever starts), bound to a llmledger tracker.",
        ("serialized", "inputs"), [RunId, ParentRunId, Name], chain_start;
    "on_chain_end" => ON_CHAIN_END,
        "LangChain's on_chain_end (and chain errors, tool and retriever ends and errors), bound to a llmledger tracker.",
        ("outputs"), [RunId], chain_end;
}

/// Every LangChain hook a tracker implements: the seven defined above, and the tool,
/// retriever and chain-error hooks that share the chain hooks (they only link runs to their
/// root). `llmledger.CostTracker` binds exactly these (`_core.HOOK_NAMES`).
pub const HOOK_NAMES: [&str; 14] = [
    "on_chat_model_start",
    "on_llm_start",
    "on_llm_new_token",
    "on_llm_end",
    "on_llm_error",
    "on_chain_start",
    "on_chain_end",
    "on_chain_error",
    "on_tool_start",
    "on_tool_end",
    "on_tool_error",
    "on_retriever_start",
    "on_retriever_end",
    "on_retriever_error",
];

/// LangChain's hook `name` (`on_llm_end`, `on_tool_start`, ... one of `HOOK_NAMES`) bound to
/// `tracker`: a builtin function taking LangChain's arguments, called without a Python frame.
/// `CostTracker` makes these its instance's hooks.
#[pyfunction]
pub fn bind_hook(tracker: &Bound<'_, PyTracker>, name: &str) -> PyResult<Py<PyAny>> {
    let def = match name {
        "on_tool_start" | "on_retriever_start" => "on_chain_start",
        "on_chain_error" | "on_tool_end" | "on_tool_error" | "on_retriever_end"
        | "on_retriever_error" => "on_chain_end",
        other => other,
    };
    let (_, def) = DEFS
        .iter()
        .find(|(n, _)| *n == def)
        .ok_or_else(|| PyValueError::new_err(format!("no LangChain hook named '{name}'")))?;
    let py = tracker.py();
    // SAFETY: `def` is static and never written to; `tracker` is a live object, which the
    // new function holds a reference to.
    unsafe {
        let f = ffi::PyCFunction_NewEx(
            std::ptr::from_ref(&def.0).cast_mut(),
            tracker.as_ptr(),
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, f).map(Bound::unbind)
    }
}
