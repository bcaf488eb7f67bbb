//! `companies`: the company records of a compiled `Structure` and their keys, in one call (its
//! reference: `rules.detect.company.candidates_reference` over `Structure.records`).
//!
//! Each value whose member key (a list element: its list's key) names a company field joins
//! its record's fields, in body order: strings, and whole numbers under an id field. A record's
//! keys are Python's (`keys_of(fields)`: the one normaliser), asked once per distinct record
//! (its fields' kinds and raw bytes) and kept in a `Memo`; a record of more than `CACHED` fields
//! is asked every time, as the reference's cache does. The memo also keeps what field each
//! member key names (`kind_of`), so a body seen before costs no Python call at all.
//!
//! The records stay Rust records in a `CompanyRecords` sequence (a 200-contact body has 200:
//! a NamedTuple and an int each, built and freed per request, read back only to count the
//! unchecked and find the denied): `CompanyRecord`s are built only for Python code that reads
//! them (`__getitem__`, `__iter__`).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyIterator, PySet, PySlice, PyString, PyTuple};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::json::{TKind, Tok, NONE};
use crate::named::Named;
use crate::normalised::Memo;
use crate::seq;
use crate::structure::Structure;

/// Fields of a record kept in the memo at most (`rules.detect.company._CACHED_FIELDS`).
const CACHED: usize = 64;

/// The field kinds seen in one call: the Python names (the fields' first items) and the
/// same names as Rust strings (compared per token without asking Python for its UTF-8).
#[derive(Default)]
struct Kinds<'py> {
    names: Vec<Bound<'py, PyString>>,
    texts: Vec<String>,
}

/// The records in order of their first field (their nodes), and every field as `(record
/// position, kind index, token index)`, sorted by record then body order: one flat vector,
/// not one per record (a 200-record body paid more in allocating than in reading them).
struct Groups {
    nodes: Vec<isize>,
    fields: Vec<(usize, usize, usize)>,
}

/// Is `t` a value the reference keeps for a field of `kind` (a string; an id's whole number)?
fn kept(t: &Tok, kind: &str) -> bool {
    match t.kind {
        TKind::Str => true,
        TKind::Num => kind == "id" && !t.float,
        TKind::Key => false,
    }
}

/// The field kind (an index into `kinds`) member key `name` names, asked once per call.
fn kind_named<'py>(
    s: &Structure,
    py: Python<'py>,
    name: u32,
    kind_of: &Bound<'py, PyAny>,
    kinds: &mut Kinds<'py>,
    memo: &mut Memo,
) -> PyResult<Option<usize>> {
    let text = &s.flat.keys[name as usize];
    let asked = memo.get_or(py, 1, text.as_bytes(), || {
        Ok(PyTuple::new(py, [kind_of.call1((s.key(py, name),))?])?.into_any())
    })?; // slot 1: a key's field kind, as `(kind,)`, across bodies
    kind_index(asked.get_item(0)?, kinds)
}

/// The records in order of their first field, each with its fields in body order.
fn grouped<'py>(
    s: &Structure,
    py: Python<'py>,
    kind_of: &Bound<'py, PyAny>,
    kinds: &mut Kinds<'py>,
    memo: &mut Memo,
) -> PyResult<Groups> {
    // by key id (a body's keys are few): the field kind each names, once asked
    let mut named: Vec<Option<Option<usize>>> = vec![None; s.flat.keys.len()];
    let mut at: FxHashMap<isize, usize> = FxHashMap::default();
    let mut groups = Groups {
        nodes: Vec::new(),
        fields: Vec::new(),
    };
    let mut last: Option<(isize, usize)> = None; // a record's fields mostly come in a row
    for (index, t) in s.flat.tokens.iter().enumerate() {
        if t.kind == TKind::Key {
            continue;
        }
        let name = if t.key != NONE {
            t.key
        } else {
            s.list_key(t.parent)
        };
        if name == NONE {
            continue;
        }
        let kind = match named[name as usize] {
            Some(kind) => kind,
            None => {
                let kind = kind_named(s, py, name, kind_of, kinds, memo)?;
                named[name as usize] = Some(kind);
                kind
            }
        };
        let Some(kind) = kind else { continue };
        if !kept(t, &kinds.texts[kind]) {
            continue;
        }
        let group = match last {
            Some((record, group)) if record == t.record => group,
            _ => *at.entry(t.record).or_insert_with(|| {
                groups.nodes.push(t.record);
                groups.nodes.len() - 1
            }),
        };
        last = Some((t.record, group));
        groups.fields.push((group, kind, index));
    }
    groups.fields.sort_by_key(|&(group, _, _)| group); // stable: body order within a record
    Ok(groups)
}

/// The index of `kind` (a field kind name, or None) among the kinds seen so far.
fn kind_index<'py>(kind: Bound<'py, PyAny>, kinds: &mut Kinds<'py>) -> PyResult<Option<usize>> {
    if kind.is_none() {
        return Ok(None);
    }
    let kind = kind.downcast_into::<PyString>()?;
    let text = kind.to_str()?.to_owned();
    if let Some(i) = kinds.texts.iter().position(|k| *k == text) {
        return Ok(Some(i));
    }
    kinds.names.push(kind);
    kinds.texts.push(text);
    Ok(Some(kinds.names.len() - 1))
}

/// `(keys, complete)` of one record: from the memo, or `keys_of(fields)` (then kept).
fn keys<'py>(
    s: &Structure,
    py: Python<'py>,
    fields: &[(usize, usize, usize)],
    kinds: &Kinds<'py>,
    memo: &mut Memo,
    keys_of: &Bound<'py, PyAny>,
    key: &mut Vec<u8>,
) -> PyResult<Bound<'py, PyTuple>> {
    let ask = || -> PyResult<Bound<'py, PyAny>> {
        let mut items = Vec::with_capacity(fields.len());
        for &(_, kind, index) in fields {
            let value = s.value(py, &s.flat.tokens[index])?;
            items.push(PyTuple::new(
                py,
                [kinds.names[kind].clone().into_any(), value],
            )?);
        }
        keys_of.call1((PyTuple::new(py, items)?,))
    };
    if fields.len() > CACHED {
        return ask()?.downcast_into::<PyTuple>().map_err(Into::into);
    }
    let body = s.body.as_bytes(py);
    key.clear(); // one buffer for every record of the body
    for &(_, kind, index) in fields {
        let t = &s.flat.tokens[index];
        let raw = &body[t.start..t.end];
        let name = &kinds.texts[kind]; // the field kind's name: stable across calls
        key.push(name.len() as u8);
        key.extend_from_slice(name.as_bytes());
        key.extend_from_slice(&(raw.len() as u64).to_le_bytes());
        key.extend_from_slice(raw); // a string keeps its quotes: never a number's bytes
    }
    memo.get_or(py, 0, key, ask)
}

/// `[record(node, keys, complete)]` of every record that names a company (keys, or
/// `complete` false), in order of its first field, as a `CompanyRecords` sequence; with
/// `query`, every key is also added to it (`rules.detect.company.query`), each keys tuple once:
/// the records of one company share theirs (`company._shared`), so a body of one company's
/// people adds its keys once.
#[pyfunction]
#[pyo3(signature = (structure, kind_of, memo, keys_of, record, query=None))]
pub fn companies<'py>(
    py: Python<'py>,
    structure: &Bound<'py, Structure>,
    kind_of: &Bound<'py, PyAny>,
    memo: &Bound<'py, Memo>,
    keys_of: &Bound<'py, PyAny>,
    record: &Bound<'py, PyAny>,
    query: Option<&Bound<'py, PySet>>,
) -> PyResult<CompanyRecords> {
    let s = structure.get();
    let mut added: FxHashSet<usize> = FxHashSet::default(); // the keys tuples `query` holds
    let mut kinds = Kinds::default();
    let mut memo = memo.try_borrow_mut()?;
    let groups = grouped(s, py, kind_of, &mut kinds, &mut memo)?;
    let mut out = Vec::new();
    let mut key = Vec::new();
    let mut from = 0;
    while from < groups.fields.len() {
        let group = groups.fields[from].0;
        // a record has a few fields: a walk, not a binary search over all that follow
        let rest = &groups.fields[from..];
        let to = from + rest.iter().position(|f| f.0 != group).unwrap_or(rest.len());
        let (node, fields) = (groups.nodes[group], &groups.fields[from..to]);
        from = to;
        let found = keys(s, py, fields, &kinds, &mut memo, keys_of, &mut key)?;
        let names = found.get_item(0)?.downcast_into::<PyTuple>()?;
        let complete = found.get_item(1)?.is_truthy()?;
        if names.is_empty() && complete {
            continue;
        }
        if let Some(query) = query {
            if added.insert(names.as_ptr() as usize) {
                names.iter_borrowed().try_for_each(|key| query.add(key))?;
            }
        }
        out.push(Company {
            node,
            values: names.unbind(),
            complete,
        });
    }
    Ok(CompanyRecords {
        unchecked: out.iter().filter(|r| !r.complete).count(),
        items: out,
        class: record.clone().unbind(),
    })
}

/// One record: its node, its keys (the memo's shared tuple), whether they are all of them.
struct Company {
    node: isize,
    values: Py<PyTuple>,
    complete: bool,
}

/// A read-only sequence of `CompanyRecord(node, values, complete)`, equal item by item to the
/// reference's tuple (`rules.detect.company.candidates_reference`).
#[pyclass(frozen, module = "rules._native")]
pub struct CompanyRecords {
    items: Vec<Company>,
    /// The `CompanyRecord` class.
    class: Py<PyAny>,
    unchecked: usize,
}

impl CompanyRecords {
    fn make<'py>(
        &self,
        py: Python<'py>,
        named: &Named<'py>,
        r: &Company,
    ) -> PyResult<Bound<'py, PyAny>> {
        named.make([
            r.node.into_pyobject(py)?.into_any(),
            r.values.bind(py).clone().into_any(),
            pyo3::types::PyBool::new(py, r.complete)
                .to_owned()
                .into_any(),
        ])
    }

    fn sliced(&self, py: Python<'_>, slice: &Bound<'_, PySlice>) -> PyResult<Self> {
        let at = slice.indices(self.items.len() as isize)?;
        let mut items = Vec::with_capacity(at.slicelength);
        let mut index = at.start;
        for _ in 0..at.slicelength {
            let r = &self.items[index as usize];
            items.push(Company {
                node: r.node,
                values: r.values.clone_ref(py),
                complete: r.complete,
            });
            index += at.step;
        }
        Ok(CompanyRecords {
            unchecked: items.iter().filter(|r| !r.complete).count(),
            items,
            class: self.class.clone_ref(py),
        })
    }
}

#[pymethods]
impl CompanyRecords {
    fn __len__(&self) -> usize {
        self.items.len()
    }

    /// A `CompanyRecord` by index, or a `CompanyRecords` by slice (as a tuple slices).
    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        index: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if let Ok(slice) = index.downcast::<PySlice>() {
            return Ok(Bound::new(py, self.sliced(py, slice)?)?.into_any());
        }
        let index: isize = index.extract()?;
        let record = &self.items[seq::position(index, self.items.len(), "record")?];
        self.make(py, &Named::of(self.class.bind(py))?, record)
    }

    fn __iter__(slf: Bound<'_, Self>) -> CompanyRecordsIter {
        CompanyRecordsIter {
            seq: slf.unbind(),
            at: 0,
        }
    }

    /// Equal to any sequence of the same `CompanyRecord`s (the reference's tuple); anything
    /// that is not iterable is left to Python (unequal).
    fn __eq__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<PyObject> {
        seq::list_eq(slf.as_any(), other)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        seq::list_repr("CompanyRecords", slf.as_any())
    }

    fn __reversed__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyIterator>> {
        seq::list_reversed(slf.as_any())
    }

    /// `rules.detect.company.unchecked`: the records not read whole (counted when made).
    fn unchecked(&self) -> usize {
        self.unchecked
    }

    /// `rules.detect.company.denied_records` of a non-empty `denied`: record node → the tier
    /// (`tier_of(key)`) of its first key `denied` holds. `tier_of` is asked once per distinct
    /// key tuple and hit: the records of one company share their keys.
    fn denied<'py>(
        &self,
        py: Python<'py>,
        denied: &Bound<'py, PyAny>,
        tier_of: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let mut seen: Vec<(usize, Option<Bound<'py, PyAny>>)> = Vec::new(); // keys tuple → tier
        for r in &self.items {
            let values = r.values.bind(py);
            let known = seen.iter().find(|(at, _)| *at == values.as_ptr() as usize);
            let tier = match known {
                Some((_, tier)) => tier.clone(),
                None => {
                    let tier = first_in(values, denied)?
                        .map(|hit| tier_of.call1((hit,)))
                        .transpose()?;
                    if seen.len() < 64 {
                        seen.push((values.as_ptr() as usize, tier.clone()));
                    }
                    tier
                }
            };
            if let Some(tier) = tier {
                out.set_item(r.node, tier)?;
            }
        }
        Ok(out)
    }
}

/// The first of `values` that `denied` holds.
fn first_in<'py>(
    values: &Bound<'py, PyTuple>,
    denied: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    for value in values.iter_borrowed() {
        if denied.contains(&*value)? {
            return Ok(Some(value.to_owned()));
        }
    }
    Ok(None)
}

/// `iter(records)`: a `CompanyRecord` per step.
#[pyclass(module = "rules._native")]
pub struct CompanyRecordsIter {
    seq: Py<CompanyRecords>,
    at: usize,
}

#[pymethods]
impl CompanyRecordsIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let seq = self.seq.get();
        let Some(record) = seq.items.get(self.at) else {
            return Ok(None);
        };
        self.at += 1;
        seq.make(py, &Named::of(seq.class.bind(py))?, record)
            .map(Some)
    }
}
