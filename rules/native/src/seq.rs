//! What the compiled read-only sequences (`Sites`, `Candidates`, `CompanyRecords`) answer
//! alike: an index as a tuple takes it, `==` and `repr` as their items' list, `reversed()`.
//!
//! None is a `#[pyclass(sequence)]`: PyO3 would fill `sq_length`, and CPython's
//! `PySequence_GetItem` would add the length to a negative index that `__getitem__` adds again
//! (-len-1 read the last item). Without it `reversed()` needs `__reversed__`: `list_reversed`.

use pyo3::exceptions::PyIndexError;
use pyo3::prelude::*;
use pyo3::types::{PyIterator, PyList};

/// The item an `index` (negative: from the end) names in a sequence of `len`, else the
/// IndexError a tuple raises (`what index out of range`).
pub fn position(index: isize, len: usize, what: &str) -> PyResult<usize> {
    let at = if index < 0 {
        index + len as isize
    } else {
        index
    };
    usize::try_from(at)
        .ok()
        .filter(|&at| at < len)
        .ok_or_else(|| PyIndexError::new_err(format!("{what} index out of range")))
}

/// The items of `seq`, as its iterator gives them, in a list.
fn list<'py>(seq: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyList>> {
    PyList::new(seq.py(), seq.try_iter()?.collect::<PyResult<Vec<_>>>()?)
}

/// `seq == other`: equal to any iterable of the same items (the reference's list or tuple);
/// anything that is not iterable is left to Python (NotImplemented: unequal).
pub fn list_eq(seq: &Bound<'_, PyAny>, other: &Bound<'_, PyAny>) -> PyResult<PyObject> {
    let py = seq.py();
    let Ok(theirs) = other.try_iter() else {
        return Ok(py.NotImplemented());
    };
    let theirs = PyList::new(py, theirs.collect::<PyResult<Vec<_>>>()?)?;
    let equal = list(seq)?.eq(theirs)?;
    Ok(equal.into_pyobject(py)?.to_owned().into_any().unbind())
}

/// `repr(seq)`: `Name([item, ...])`, the items as a list shows them.
pub fn list_repr(name: &str, seq: &Bound<'_, PyAny>) -> PyResult<String> {
    Ok(format!("{name}({})", list(seq)?.repr()?))
}

/// `reversed(seq)`: its items last first (read into a list first: the sequence is immutable,
/// and nothing on a request's path reverses one).
pub fn list_reversed<'py>(seq: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyIterator>> {
    let items = list(seq)?;
    items.reverse()?;
    items.try_iter()
}
