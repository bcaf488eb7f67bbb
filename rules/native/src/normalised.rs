//! `candidates`: the text scanner's whole contract in one call, as
//! `rules.detect.scan._candidates(find(...), region)` returns it: every raw candidate
//! normalised, the readings of one span and type merged, sorted by span then type.
//!
//! The normal forms are Python's (rules/detect/readings.normals: the one normaliser), asked once
//! per distinct text and kept in a `Memo`. A contact seen before costs a hash of its bytes here,
//! not a Python string, a call and a tuple per raw candidate.

use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use rustc_hash::FxHashMap;

use crate::named::Named;
use crate::records::{Candidates, Record};

/// What each finder kind is looked up as: emails, LinkedIn profiles, and phones (windows of
/// text and JSON numbers alike); the order of `RuleType`'s values, so spans sort as in Python.
pub const TYPE_OF_KIND: [usize; 4] = [0, 1, 2, 2];

/// Answers of a Python function by slot (a finder kind; a site's context and type) and raw
/// bytes, bounded: past `limit` entries or `MAX_KEY_BYTES` of keys it starts afresh (a
/// bounded memory whatever the traffic; a cleared memo only costs the function's calls
/// again). A key over `MAX_KEPT_KEY` bytes (a huge free-text token, seen once) is not kept.
#[pyclass(module = "rules._native")]
pub struct Memo {
    slots: [FxHashMap<Box<[u8]>, Py<PyTuple>>; 4],
    limit: usize,
    len: usize,
    key_bytes: usize,
}

/// Keys' bytes a memo keeps at most: e-mail-sized texts fill `limit` entries long before.
const MAX_KEY_BYTES: usize = 8 << 20;
/// The longest key kept: longer texts are answered, not remembered.
const MAX_KEPT_KEY: usize = 1024;

#[pymethods]
impl Memo {
    #[new]
    fn new(limit: usize) -> Self {
        Memo {
            slots: Default::default(),
            limit: limit.max(1),
            len: 0,
            key_bytes: 0,
        }
    }

    fn __len__(&self) -> usize {
        self.len
    }

    fn clear(&mut self) {
        self.slots.iter_mut().for_each(FxHashMap::clear);
        self.len = 0;
        self.key_bytes = 0;
    }
}

/// `(normals, union, rule_types, Candidate)` from rules/detect/scan.py: the normaliser of one
/// region `normals(kind, text)`, the merge of two readings' forms, the three `RuleType`s and
/// the NamedTuple the reference builds.
pub struct Context<'py> {
    normals: Bound<'py, PyAny>,
    union: Bound<'py, PyAny>,
    types: [Bound<'py, PyAny>; 3],
    class: Bound<'py, PyAny>,
    candidate: Named<'py>,
}

impl<'py> Context<'py> {
    /// The `RuleType` a finder kind is looked up as.
    pub fn rule_type(&self, kind: u8) -> &Bound<'py, PyAny> {
        &self.types[TYPE_OF_KIND[usize::from(kind)]]
    }

    pub fn of(_py: Python<'py>, context: &Bound<'py, PyTuple>) -> PyResult<Self> {
        let types = context.get_item(2)?;
        let class = context.get_item(3)?;
        Ok(Context {
            normals: context.get_item(0)?,
            union: context.get_item(1)?,
            types: [types.get_item(0)?, types.get_item(1)?, types.get_item(2)?],
            candidate: Named::of(&class)?,
            class,
        })
    }
}

impl Memo {
    /// The answer kept for `key` in `slot`, or `make`'s (then kept).
    pub fn get_or<'py>(
        &mut self,
        py: Python<'py>,
        slot: usize,
        key: &[u8],
        make: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        if let Some(kept) = self.slots[slot].get(key) {
            return Ok(kept.bind(py).clone());
        }
        let made = make()?.downcast_into::<PyTuple>()?;
        if key.len() > MAX_KEPT_KEY {
            return Ok(made);
        }
        if self.len >= self.limit || self.key_bytes + key.len() > MAX_KEY_BYTES {
            self.clear();
        }
        self.slots[slot].insert(key.into(), made.clone().unbind());
        self.len += 1;
        self.key_bytes += key.len();
        Ok(made)
    }

    /// The normal forms of one raw candidate's text (finder kind `kind`).
    pub fn forms<'py>(
        &mut self,
        ctx: &Context<'py>,
        kind: u8,
        text: &str,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let slot = usize::from(kind);
        self.get_or(ctx.normals.py(), slot, text.as_bytes(), || {
            ctx.normals.call1((kind, text))
        })
    }
}

/// Merges the forms found per `(start, end, type)` and builds the sorted `Candidate`s.
///
/// The readings are listed as found and sorted once at the end (a stable sort: the readings
/// of one span and type stay in the order found, which is the order their forms are merged
/// in), not kept in a map per span: a body lists a thousand, almost all of them one per span.
pub struct Merged<'py> {
    found: Vec<((usize, usize, usize), Bound<'py, PyTuple>)>,
}

impl<'py> Merged<'py> {
    /// Room for `readings` readings (each raw candidate is one).
    pub fn with_capacity(readings: usize) -> Self {
        Merged {
            found: Vec::with_capacity(readings),
        }
    }

    /// One reading: `forms` of a candidate of finder kind `kind` at `start..end` (caller's
    /// units); none is no identifier.
    pub fn add(&mut self, (kind, start, end): (u8, usize, usize), forms: Bound<'py, PyTuple>) {
        if !forms.is_empty() {
            let key = (start, end, TYPE_OF_KIND[usize::from(kind)]);
            self.found.push((key, forms));
        }
    }

    /// The merged records, sorted by span then type, the forms of one span and type joined.
    fn merged(mut self, ctx: &Context<'py>) -> PyResult<Vec<Record>> {
        self.found.sort_by_key(|&(key, _)| key);
        let mut out = Vec::with_capacity(self.found.len());
        let mut found = self.found.into_iter().peekable();
        while let Some((key, mut forms)) = found.next() {
            while let Some((_, more)) = found.next_if(|(next, _)| *next == key) {
                forms = ctx.union.call1((forms, more))?.downcast_into::<PyTuple>()?;
            }
            let (start, end, rule_type) = key;
            out.push(Record {
                rule_type,
                start,
                end,
                forms: forms.unbind(),
            });
        }
        Ok(out)
    }

    /// The reference's list of `Candidate`s.
    pub fn candidates(self, ctx: &Context<'py>) -> PyResult<Bound<'py, PyList>> {
        let py = ctx.normals.py();
        let records = self.merged(ctx)?;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            out.push(ctx.candidate.make([
                ctx.types[r.rule_type].clone(),
                r.start.into_pyobject(py)?.into_any(),
                r.end.into_pyobject(py)?.into_any(),
                r.forms.into_bound(py).into_any(),
            ])?);
        }
        PyList::new(py, out)
    }

    /// The same candidates kept as records: a `Candidate` is built only when Python asks.
    pub fn records(self, ctx: &Context<'py>) -> PyResult<Candidates> {
        let types = [0, 1, 2].map(|i| ctx.types[i].clone().unbind());
        let class = ctx.class.clone().unbind();
        Ok(Candidates::new(self.merged(ctx)?, types, class))
    }
}
