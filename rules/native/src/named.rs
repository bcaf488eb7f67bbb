//! NamedTuple instances (`Candidate`, `CompanyRecord`) built the way `tuple.__new__(cls,
//! fields)` builds them, without the Python call and the fields' own tuple: a body makes a
//! thousand candidates, and the call was most of the cost of each.
//!
//! Only for a class laid out as a plain tuple (a NamedTuple: `__slots__ = ()`): `Named::of`
//! checks that it subclasses `tuple` with the same `__basicsize__` and `__itemsize__`, else it
//! keeps calling `tuple.__new__`.
//!
//! A record built here is not tracked by Python's cycle collector: it is immutable and holds
//! values made before it (a `RuleType`, ints, tuples of strings), none of which can refer back
//! to it, so it can never be part of a cycle. CPython untracks plain tuples like it lazily, at
//! a collection (`_PyTuple_MaybeUntrack`), but not tuple subclasses: tracked, a body's
//! thousand candidates were traversed by every young collection that met them.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};
use std::sync::Mutex;

pub struct Named<'py> {
    cls: Bound<'py, PyType>,
    /// The class's `tp_alloc` when it is laid out as a tuple; None: call `tuple.__new__`.
    alloc: Option<ffi::allocfunc>,
}

/// What `layout` found per class, for the few classes a process builds (a call builds a
/// `Named` each time: the attribute lookups and the subclass test were ~1 µs of it). A class
/// here is held, so it cannot be freed and its address reused by another.
static LAYOUTS: Mutex<Vec<(Py<PyType>, Option<ffi::allocfunc>)>> = Mutex::new(Vec::new());
const MAX_LAYOUTS: usize = 16;

impl<'py> Named<'py> {
    pub fn of(cls: &Bound<'py, PyAny>) -> PyResult<Self> {
        let cls = cls.downcast::<PyType>()?.clone();
        let known = |layouts: &[(Py<PyType>, Option<ffi::allocfunc>)]| {
            layouts
                .iter()
                .find(|(c, _)| c.as_ptr() == cls.as_ptr())
                .map(|&(_, a)| a)
        };
        if let Some(alloc) = known(&LAYOUTS.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(Named { cls, alloc });
        }
        let alloc = layout(&cls)?; // Python code runs: no lock held
        let mut layouts = LAYOUTS.lock().unwrap_or_else(|e| e.into_inner());
        if layouts.len() < MAX_LAYOUTS && known(&layouts).is_none() {
            layouts.push((cls.clone().unbind(), alloc));
        }
        Ok(Named { cls, alloc })
    }

    /// `tuple.__new__(cls, items)`.
    pub fn make<const N: usize>(
        &self,
        items: [Bound<'py, PyAny>; N],
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.cls.py();
        let Some(alloc) = self.alloc else {
            let tuple_new = py.get_type::<PyTuple>().getattr("__new__")?;
            return tuple_new.call1((&self.cls, PyTuple::new(py, items)?));
        };
        // SAFETY: `alloc` is the class's own tp_alloc and the class is laid out as a tuple
        // (checked in `of`): it returns a new tuple of N empty slots, each filled once below
        // with a reference PyTuple_SetItem steals.
        unsafe {
            let obj = alloc(self.cls.as_type_ptr(), N as ffi::Py_ssize_t);
            if obj.is_null() {
                return Err(PyErr::fetch(py));
            }
            let obj = Bound::from_owned_ptr(py, obj);
            for (i, item) in items.into_iter().enumerate() {
                if ffi::PyTuple_SetItem(obj.as_ptr(), i as ffi::Py_ssize_t, item.into_ptr()) != 0 {
                    return Err(PyErr::fetch(py));
                }
            }
            ffi::PyObject_GC_UnTrack(obj.as_ptr().cast()); // no cycle can hold it (see above)
            Ok(obj)
        }
    }
}

/// The class's `tp_alloc` when it is laid out as a plain tuple (a NamedTuple), else None.
fn layout(cls: &Bound<'_, PyType>) -> PyResult<Option<ffi::allocfunc>> {
    let tuple = cls.py().get_type::<PyTuple>();
    let same = |name: &str| -> PyResult<bool> { cls.getattr(name)?.eq(tuple.getattr(name)?) };
    let plain = cls.is_subclass(&tuple)? && same("__basicsize__")? && same("__itemsize__")?;
    // SAFETY: `cls` is a live type object; a tuple subclass always has a tp_alloc slot.
    let slot = unsafe { ffi::PyType_GetSlot(cls.as_type_ptr(), ffi::Py_tp_alloc) };
    Ok((plain && !slot.is_null()).then(|| {
        // SAFETY: the Py_tp_alloc slot holds an allocfunc.
        unsafe { std::mem::transmute::<*mut std::ffi::c_void, ffi::allocfunc>(slot) }
    }))
}
