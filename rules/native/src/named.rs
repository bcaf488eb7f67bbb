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

pub struct Named<'py> {
    cls: Bound<'py, PyType>,
    /// The class's `tp_alloc` when it is laid out as a tuple; None: call `tuple.__new__`.
    alloc: Option<ffi::allocfunc>,
    tuple_new: Bound<'py, PyAny>,
}

impl<'py> Named<'py> {
    pub fn of(cls: &Bound<'py, PyAny>) -> PyResult<Self> {
        let py = cls.py();
        let tuple = py.get_type::<PyTuple>();
        let cls = cls.downcast::<PyType>()?.clone();
        let same =
            |name: &str| -> PyResult<bool> { Ok(cls.getattr(name)?.eq(tuple.getattr(name)?)?) };
        let plain = cls.is_subclass(&tuple)? && same("__basicsize__")? && same("__itemsize__")?;
        // SAFETY: `cls` is a live type object; a tuple subclass always has a tp_alloc slot.
        let slot = unsafe { ffi::PyType_GetSlot(cls.as_type_ptr(), ffi::Py_tp_alloc) };
        let alloc = (plain && !slot.is_null()).then(|| {
            // SAFETY: the Py_tp_alloc slot holds an allocfunc.
            unsafe { std::mem::transmute::<*mut std::ffi::c_void, ffi::allocfunc>(slot) }
        });
        Ok(Named {
            cls,
            alloc,
            tuple_new: tuple.getattr("__new__")?,
        })
    }

    /// `tuple.__new__(cls, items)`.
    pub fn make<const N: usize>(
        &self,
        items: [Bound<'py, PyAny>; N],
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.cls.py();
        let Some(alloc) = self.alloc else {
            return self.tuple_new.call1((&self.cls, PyTuple::new(py, items)?));
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
