//! `Candidates`: a body's merged text candidates kept as Rust records (type, span, the memo's
//! shared tuple of forms), read as a sequence of the reference's `Candidate` NamedTuples.
//!
//! A 79 kB body has ~800; as NamedTuples (a tuple and two ints each) ~30 % of the scan's time
//! went to allocating them and the request's end to freeing them, while the compiled consumers
//! (gather.rs, windows.rs) only read them back. They read the records here; Python code gets a
//! `Candidate` per item it asks for (`__getitem__`, `__iter__`), built then.

use pyo3::prelude::*;
use pyo3::types::{PyIterator, PyList, PySlice, PyTuple};

use crate::named::Named;
use crate::seq;

/// One merged candidate: its type (an index into `Candidates::types`), span, normal forms.
pub struct Record {
    pub rule_type: usize,
    pub start: usize,
    pub end: usize,
    pub forms: Py<PyTuple>,
}

/// A read-only sequence of `Candidate(kind, start, end, normal)`, equal item by item to the
/// reference's list (`rules.detect.scan._candidates`).
#[pyclass(frozen, module = "rules._native")]
pub struct Candidates {
    pub(crate) items: Vec<Record>,
    /// The three `RuleType`s a record's `rule_type` indexes, and the `Candidate` class.
    pub(crate) types: [Py<PyAny>; 3],
    class: Py<PyAny>,
}

impl Candidates {
    pub fn new(items: Vec<Record>, types: [Py<PyAny>; 3], class: Py<PyAny>) -> Self {
        Candidates {
            items,
            types,
            class,
        }
    }

    /// The `RuleType` of a record, borrowed.
    pub fn kind<'a, 'py>(&'a self, py: Python<'py>, record: &Record) -> &'a Bound<'py, PyAny> {
        self.types[record.rule_type].bind(py)
    }

    /// The class builder, looked up once per call that builds many.
    pub fn named<'py>(&self, py: Python<'py>) -> PyResult<Named<'py>> {
        Named::of(self.class.bind(py))
    }

    /// The `Candidate` of one record.
    pub fn make<'py>(
        &self,
        py: Python<'py>,
        named: &Named<'py>,
        record: &Record,
    ) -> PyResult<Bound<'py, PyAny>> {
        named.make([
            self.kind(py, record).clone(),
            record.start.into_pyobject(py)?.into_any(),
            record.end.into_pyobject(py)?.into_any(),
            record.forms.bind(py).clone().into_any(),
        ])
    }

    fn sliced(&self, py: Python<'_>, slice: &Bound<'_, PySlice>) -> PyResult<Self> {
        let at = slice.indices(self.items.len() as isize)?;
        let mut items = Vec::with_capacity(at.slicelength);
        let mut index = at.start;
        for _ in 0..at.slicelength {
            let r = &self.items[index as usize];
            items.push(Record {
                rule_type: r.rule_type,
                start: r.start,
                end: r.end,
                forms: r.forms.clone_ref(py),
            });
            index += at.step;
        }
        let types = [0, 1, 2].map(|i| self.types[i].clone_ref(py));
        Ok(Candidates::new(items, types, self.class.clone_ref(py)))
    }
}

#[pymethods]
impl Candidates {
    fn __len__(&self) -> usize {
        self.items.len()
    }

    /// A `Candidate` by index, or a `Candidates` by slice (as a tuple slices to a tuple).
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(slice) = index.downcast::<PySlice>() {
            return Ok(Bound::new(py, self.sliced(py, slice)?)?.into_any());
        }
        let index: isize = index.extract()?;
        let record = &self.items[seq::position(index, self.items.len(), "candidate")?];
        self.make(py, &self.named(py)?, record)
    }

    fn __iter__(slf: Bound<'_, Self>) -> CandidatesIter {
        CandidatesIter {
            seq: slf.unbind(),
            at: 0,
        }
    }

    /// Equal to any sequence of the same `Candidate`s (the reference's list); anything that is
    /// not iterable is left to Python (unequal).
    fn __eq__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<PyObject> {
        seq::list_eq(slf.as_any(), other)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        seq::list_repr("Candidates", slf.as_any())
    }

    fn __reversed__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyIterator>> {
        seq::list_reversed(slf.as_any())
    }
}

/// `iter(candidates)`: a `Candidate` per step.
#[pyclass(module = "rules._native")]
pub struct CandidatesIter {
    seq: Py<Candidates>,
    at: usize,
}

#[pymethods]
impl CandidatesIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let seq = self.seq.get();
        let Some(record) = seq.items.get(self.at) else {
            return Ok(None);
        };
        self.at += 1;
        seq.make(py, &seq.named(py)?, record).map(Some)
    }
}

/// Calls `f` on each `(type, start, end, forms)` of a text-candidate sequence: read off a
/// compiled `Candidates` as they are (no `Candidate` built), else off each `Candidate` tuple
/// of a tuple, list or any iterable (the reference's, a body's candidates with more appended).
pub fn each_candidate<'py>(
    text: &Bound<'py, PyAny>,
    mut f: impl FnMut(&Bound<'py, PyAny>, usize, usize, &Bound<'py, PyTuple>) -> PyResult<()>,
) -> PyResult<()> {
    let py = text.py();
    if let Ok(records) = text.downcast::<Candidates>() {
        let records = records.get();
        return records
            .items
            .iter()
            .try_for_each(|r| f(records.kind(py, r), r.start, r.end, r.forms.bind(py)));
    }
    let mut one = |c: &Bound<'py, PyAny>| -> PyResult<()> {
        let c = c.downcast::<PyTuple>()?; // a `Candidate`: (kind, start, end, forms)
        let kind = c.get_borrowed_item(0)?;
        let start: usize = c.get_borrowed_item(1)?.extract()?;
        let end: usize = c.get_borrowed_item(2)?.extract()?;
        let forms = c.get_borrowed_item(3)?;
        f(&kind, start, end, forms.downcast::<PyTuple>()?)
    };
    if let Ok(items) = text.downcast::<PyTuple>() {
        return items.iter_borrowed().try_for_each(|c| one(&c));
    }
    if let Ok(items) = text.downcast::<PyList>() {
        return items.iter().try_for_each(|c| one(&c));
    }
    text.try_iter()?.try_for_each(|c| one(&c?))
}
