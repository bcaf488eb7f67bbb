//! `companies`: the company records of a compiled `Structure` and their keys, in one call (its
//! reference: `rules.detect.company.candidates_reference` over `Structure.records`).
//!
//! Each value whose member key (a list element: its list's key) names a company field joins
//! its record's fields, in body order: strings, and whole numbers under an id field. A record's
//! keys are Python's (`keys_of(fields)`: the one normaliser), asked once per distinct record
//! (its fields' kinds and raw bytes) and kept in a `Memo`; a record of more than `CACHED` fields
//! is asked every time, as the reference's cache does. The memo also keeps what field each
//! member key names (`kind_of`), so a body seen before costs no Python call at all.

use pyo3::prelude::*;
use pyo3::types::{PyList, PySet, PyString, PyTuple};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::json::{TKind, Tok, NONE};
use crate::named::Named;
use crate::normalised::Memo;
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
/// `complete` false), in order of its first field; with `query`, every key is also added to
/// it (`rules.detect.company.query`), each keys tuple once: the records of one company share
/// theirs (`company._shared`), so a body of one company's people adds its keys once.
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
) -> PyResult<Bound<'py, PyList>> {
    let s = structure.get();
    let mut added: FxHashSet<usize> = FxHashSet::default(); // the keys tuples `query` holds
    let mut kinds = Kinds::default();
    let mut memo = memo.try_borrow_mut()?;
    let groups = grouped(s, py, kind_of, &mut kinds, &mut memo)?;
    let record = Named::of(record)?;
    let out = PyList::empty(py);
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
        let (names, complete) = (found.get_item(0)?, found.get_item(1)?);
        if names.len()? == 0 && complete.is_truthy()? {
            continue;
        }
        if let Some(query) = query {
            if added.insert(names.as_ptr() as usize) {
                let names = names.downcast::<PyTuple>()?;
                names.iter_borrowed().try_for_each(|key| query.add(key))?;
            }
        }
        out.append(record.make([node.into_pyobject(py)?.into_any(), names, complete])?)?;
    }
    Ok(out)
}
