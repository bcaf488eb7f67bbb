//! `splice`: the filter's output in one call once the denied tokens are known (its reference:
//! rules/detect/splice.py, `edits` + `apply_mapped`, with a cut per denied company record).
//!
//! The edits are worked out over the structure's flat tokens and nodes (no `Token` or `Node`
//! built), then made over the body's bytes: the same regions, commas and `replaced` map as the
//! reference, every other byte as it was. tests/test_splice_native.py proves it with hypothesis.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use rustc_hash::FxHashMap;

use crate::json::{Flat, Nd, Part, TKind, Tok, NONE};
use crate::structure::Structure;

/// An edit: `[start, end)` cut (with a comma) or replaced by `null`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Edit {
    start: usize,
    end: usize,
    null: bool,
}

fn cut((start, end): (usize, usize)) -> Edit {
    Edit {
        start,
        end,
        null: false,
    }
}

fn null(start: usize, end: usize) -> Edit {
    Edit {
        start,
        end,
        null: true,
    }
}

/// The contact point `t` is the value of (`jsonspan.wrapper`), or -1.
fn wrapper(flat: &Flat, t: &Tok) -> isize {
    if t.kind == TKind::Key || t.parent < 0 {
        return -1;
    }
    let sole = flat.nodes[t.parent as usize].sole;
    if sole != NONE && sole == t.key {
        t.parent
    } else {
        -1
    }
}

/// `splice._strip`: a key's member goes; a value's element, contact point, or it is null.
fn strip(flat: &Flat, t: &Tok) -> Edit {
    if t.kind == TKind::Key || (t.parent >= 0 && !flat.nodes[t.parent as usize].is_object) {
        return cut(t.slot);
    }
    let point = wrapper(flat, t);
    let node = (point >= 0).then(|| &flat.nodes[point as usize]);
    match node.and_then(|n| n.slot.map(|slot| (n, slot))) {
        None => null(t.start, t.end),
        Some((n, slot)) if n.in_list => cut(slot),
        Some((n, _)) => null(n.start, n.end),
    }
}

/// `contact.is_entries_key`, asked of Python once per distinct key id of a call.
struct Entries<'a, 'py> {
    flat: &'a Flat,
    rule: &'a Bound<'py, PyAny>,
    known: FxHashMap<u32, bool>,
}

impl Entries<'_, '_> {
    fn of(&mut self, key: u32) -> PyResult<bool> {
        if let Some(&known) = self.known.get(&key) {
            return Ok(known);
        }
        let known = self
            .rule
            .call1((&self.flat.keys[key as usize],))?
            .is_truthy()?;
        self.known.insert(key, known);
        Ok(known)
    }
}

/// `splice.record_of`: the outermost list element or object keyed in a map of records at or
/// above `node` (a map of records: an object of object values, not a record; the body only
/// when none of its values is one; none in a list under an identifier key below the body's
/// member, but for an element that says more than an entry, `is_entry`), else the body's
/// member holding `node` if it is an object.
fn record_of(flat: &Flat, mut node: isize, entries: &mut Entries) -> PyResult<isize> {
    let mut chain = Vec::new();
    while node >= 0 {
        chain.push(node);
        node = flat.nodes[node as usize].parent;
    }
    chain.reverse();
    let person = person(flat, &chain, entries)?;
    if person >= 0 {
        return Ok(person); // a person in `emails`: she goes alone
    }
    let mut keyed = false; // keyed: the node above is a map of records
    for (depth, &index) in chain.iter().enumerate() {
        let n = &flat.nodes[index as usize];
        if n.slot.is_some() && (n.in_list || (n.is_object && keyed)) {
            return Ok(index);
        }
        if let (true, false, Part::Key(key)) = (depth > 1, n.is_object, n.part) {
            if entries.of(key)? {
                break; // the holder's own entries: the body's member goes
            }
        }
        keyed = n.keyed > 0 && (n.keyed == 1 || n.slot.is_some());
    }
    Ok(holder(flat, &chain))
}

/// `splice._person`: the element of a list under an identifier key below the body's object
/// member, with no record between them, that says more than an entry (a person), else -1.
fn person(flat: &Flat, down: &[isize], entries: &mut Entries) -> PyResult<isize> {
    let node = |depth: usize| &flat.nodes[down[depth] as usize];
    if down.len() < 4 || node(1).in_list {
        return Ok(-1);
    }
    for depth in 2..down.len() - 1 {
        let n = node(depth);
        if n.in_list || (n.is_object && node(depth - 1).keyed > 0) {
            return Ok(-1); // a record above any list of entries
        }
        if let (false, Part::Key(key)) = (n.is_object, n.part) {
            if entries.of(key)? {
                let element = down[depth + 1];
                return Ok(if is_entry(node(depth + 1)) {
                    -1
                } else {
                    element
                });
            }
        }
    }
    Ok(-1)
}

/// The body's member on the way down `chain` (root first) if it is an object, else -1.
fn holder(flat: &Flat, chain: &[isize]) -> isize {
    match chain.get(1) {
        Some(&member) if flat.nodes[member as usize].is_object => member,
        _ => -1,
    }
}

/// `splice.is_entry`: a row array, or an object of one content key (`{"email": …, "domain": …}`),
/// is its holder's entry; an object saying more (a person) is a record of its own.
fn is_entry(element: &Nd) -> bool {
    !element.is_object || element.sole != NONE
}

/// `splice._drop`: the record holding `t` goes; with none, `t` is stripped where it is.
fn drop(flat: &Flat, t: &Tok, entries: &mut Entries) -> PyResult<Edit> {
    let record = record_of(flat, t.parent, entries)?;
    let slot = (record >= 0).then(|| flat.nodes[record as usize].slot);
    Ok(slot.flatten().map_or_else(|| strip(flat, t), cut))
}

/// The edits of `denied` (token indexes) by policy, then a cut per record node in `records`.
fn edits(
    flat: &Flat,
    denied: &[usize],
    records: &[isize],
    drop_rule: Option<&Bound<PyAny>>,
) -> PyResult<Vec<Edit>> {
    let tokens: Vec<&Tok> = denied.iter().map(|&i| &flat.tokens[i]).collect();
    let mut out = Vec::with_capacity(tokens.len() + records.len());
    if let Some(rule) = drop_rule {
        let known = FxHashMap::default();
        let mut entries = Entries { flat, rule, known };
        for t in tokens {
            out.push(drop(flat, t, &mut entries)?);
        }
    } else {
        out.extend(tokens.iter().map(|t| strip(flat, t)));
    }
    let nodes = records
        .iter()
        .filter(|&&r| r >= 0)
        .map(|&r| &flat.nodes[r as usize]);
    out.extend(nodes.filter_map(|n| n.slot.map(cut)));
    Ok(out)
}

/// Edits in order, each one inside an earlier one left out (`splice._outermost`).
fn outermost(mut edits: Vec<Edit>) -> Vec<Edit> {
    edits.sort_unstable_by_key(|e| (e.start, std::cmp::Reverse(e.end), e.null));
    let mut end = None;
    edits.retain(|e| {
        let keep = end.map_or(true, |last| e.end > last); // is_none_or: Rust 1.82, MSRV 1.74
        if keep {
            end = Some(e.end);
        }
        keep
    });
    edits
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Index of the last byte before `pos` that is not JSON whitespace (None: there is none).
fn back(body: &[u8], pos: usize) -> Option<usize> {
    body[..pos].iter().rposition(|&b| !is_space(b))
}

/// Index of the first byte at or after `pos` that is not JSON whitespace.
fn skip(body: &[u8], pos: usize) -> usize {
    pos + body[pos.min(body.len())..]
        .iter()
        .take_while(|&&b| is_space(b))
        .count()
}

/// The bytes an edit replaces, and whether it leads its container (`splice._region`).
fn region(body: &[u8], edit: &Edit, last: Option<(Edit, bool)>) -> (usize, usize, bool) {
    if edit.null {
        return (edit.start, edit.end, false);
    }
    if let Some(before) = back(body, edit.start).filter(|&b| body[b] == b',') {
        let prev_end = back(body, before).map_or(0, |p| p + 1);
        let led = matches!(last, Some((e, true)) if !e.null && e.end == prev_end);
        if !led {
            return (prev_end, edit.end, false);
        }
    }
    let after = skip(body, edit.end);
    if after < body.len() && body[after] == b',' {
        return (edit.start, skip(body, after + 1), true);
    }
    (edit.start, edit.end, true)
}

type Replaced = (usize, usize, usize);

/// `body` with every edit made, and the input regions replaced (`splice.apply_mapped`).
fn apply(body: &[u8], edits: Vec<Edit>) -> (Vec<u8>, Vec<Replaced>) {
    let mut out = Vec::with_capacity(body.len());
    let mut replaced = Vec::with_capacity(edits.len());
    let (mut pos, mut last) = (0, None);
    for edit in outermost(edits) {
        let (start, end, leading) = region(body, &edit, last);
        let written: &[u8] = if edit.null { b"null" } else { b"" };
        out.extend_from_slice(&body[pos..start]);
        out.extend_from_slice(written);
        replaced.push((start, end, written.len()));
        (pos, last) = (end, Some((edit, leading)));
    }
    out.extend_from_slice(&body[pos..]);
    (out, replaced)
}

/// `(output, replaced)`: the structure's body with the `denied` tokens (sorted indexes) removed
/// by policy (`drop`: their records, `entries` the rule `contact.is_entries_key`) and each
/// record node of `records` cut; the body object
/// itself, and no region, when there is nothing to edit.
#[pyfunction]
pub fn splice<'py>(
    py: Python<'py>,
    structure: &Bound<'py, Structure>,
    denied: Vec<usize>,
    records: Vec<isize>,
    drop_policy: bool,
    entries: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let s = structure.get();
    let flat = &s.flat;
    if denied.iter().any(|&i| i >= flat.tokens.len())
        || records.iter().any(|&r| r >= flat.nodes.len() as isize)
    {
        return Err(pyo3::exceptions::PyIndexError::new_err(
            "index out of range",
        ));
    }
    let changes = edits(flat, &denied, &records, drop_policy.then_some(&entries))?;
    let body = s.body.bind(py);
    if changes.is_empty() {
        return PyTuple::new(py, [body.clone().into_any(), PyList::empty(py).into_any()]);
    }
    let (out, replaced) = apply(body.as_bytes(), changes);
    let replaced = PyList::new(py, replaced)?;
    PyTuple::new(py, [PyBytes::new(py, &out).into_any(), replaced.into_any()])
}
