//! `json_structure`: a scanned JSON body as flat records, and the few Python objects asked of it.
//!
//! The contract of `rules.detect.structure.Structure` (its reference: `structure.Reference`, over
//! the pure-Python `jsonspan.scan`): `sites()` lists only the tokens that may hold an identifier
//! `(index, value, phone_context)`; `token(i)` / `node(i)` build the reference's `Token` / `Node`
//! NamedTuples on demand (a splice needs a handful); `overlapping(start, end)` places a text
//! candidate on tokens. `json_scan` builds every token and node (the full reference contract).

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyIterator, PyList, PyString, PyTuple, PyType};

use crate::json::{Flat, KeyFacts, Part, Rules, Scanner, TKind, Tok, NONE};
use crate::lex::unescape;
use crate::normalised::Memo;
use crate::seq;

/// `(Token, Node, Kind.STRING, Kind.KEY, Kind.NUMBER, describes, JsonBodyError, is_phone_key,
/// is_phone_type, TYPE_KEYS)` from rules/detect/finder.py.
struct Classes {
    token: Py<PyAny>,
    node: Py<PyAny>,
    kinds: [Py<PyAny>; 3],
    int: Py<PyAny>,
}

#[pyclass(frozen, module = "rules._native")]
pub struct Structure {
    pub(crate) body: Py<PyBytes>,
    pub(crate) flat: Flat,
    classes: Classes,
}

fn scan<'py>(
    py: Python<'py>,
    body: &Bound<'py, PyBytes>,
    meta_keys: &Bound<'py, PyAny>,
    max_depth: i64,
    context: &Bound<'py, PyTuple>,
    facts: &Bound<'py, KeyFacts>,
) -> PyResult<Structure> {
    let rules = Rules {
        facts: facts.clone(),
        meta: meta_keys.clone(),
        describes: context.get_item(5)?,
        phone_key: context.get_item(7)?,
        phone_type: context.get_item(8)?,
        type_keys: context.get_item(9)?,
        error: context.get_item(6)?.downcast_into::<PyType>()?,
        int: py.get_type::<pyo3::types::PyInt>().into_any(),
    };
    let flat = Scanner::new(py, body.as_bytes(), &rules, max_depth).run()?;
    let classes = Classes {
        token: context.get_item(0)?.unbind(),
        node: context.get_item(1)?.unbind(),
        kinds: [
            context.get_item(2)?.unbind(),
            context.get_item(3)?.unbind(),
            context.get_item(4)?.unbind(),
        ],
        int: rules.int.unbind(),
    };
    Ok(Structure {
        body: body.clone().unbind(),
        flat,
        classes,
    })
}

impl Structure {
    pub(crate) fn key<'py>(&self, py: Python<'py>, key: u32) -> Bound<'py, PyAny> {
        if key == NONE {
            return py.None().into_bound(py);
        }
        PyString::new(py, &self.flat.keys[key as usize]).into_any()
    }

    fn part<'py>(&self, py: Python<'py>, part: Part) -> PyResult<Option<Bound<'py, PyAny>>> {
        Ok(match part {
            Part::None => None,
            Part::Key(key) => Some(self.key(py, key)),
            Part::Index(i) => Some(i.into_pyobject(py)?.into_any()),
        })
    }

    /// The path of keys and indexes to node `node` (-1: the root's, empty).
    fn node_path<'py>(&self, py: Python<'py>, mut node: isize) -> PyResult<Vec<Bound<'py, PyAny>>> {
        let mut parts = Vec::new();
        while node >= 0 {
            let nd = &self.flat.nodes[node as usize];
            parts.extend(self.part(py, nd.part)?);
            node = nd.parent;
        }
        parts.reverse();
        Ok(parts)
    }

    pub(crate) fn value<'py>(&self, py: Python<'py>, t: &Tok) -> PyResult<Bound<'py, PyAny>> {
        let body = self.body.as_bytes(py);
        if t.kind != TKind::Num {
            let raw = std::str::from_utf8(&body[t.start + 1..t.end - 1]).expect("checked");
            let text = if t.escaped {
                unescape(raw).expect("checked")
            } else {
                raw.to_owned()
            };
            return Ok(PyString::new(py, &text).into_any());
        }
        let text = std::str::from_utf8(&body[t.start..t.end]).expect("checked");
        if t.float {
            return Ok(PyFloat::new(py, text.parse().expect("checked")).into_any());
        }
        if text.len() <= 18 {
            if let Ok(value) = text.parse::<i64>() {
                return Ok(value.into_pyobject(py)?.into_any());
            }
        }
        self.classes.int.bind(py).call1((text,))
    }

    fn make<'py>(
        &self,
        py: Python<'py>,
        cls: &Py<PyAny>,
        fields: Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        // Looked up here, not per scan: only the reference's paths build tokens and nodes.
        let tuple_new = py.get_type::<PyTuple>().getattr("__new__")?;
        tuple_new.call1((cls.bind(py), fields))
    }

    fn build_token<'py>(
        &self,
        py: Python<'py>,
        t: &Tok,
        path: Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let kind = match t.kind {
            TKind::Str => &self.classes.kinds[0],
            TKind::Key => &self.classes.kinds[1],
            TKind::Num => &self.classes.kinds[2],
        };
        let fields = (
            kind.bind(py),
            t.start,
            t.end,
            self.value(py, t)?,
            self.key(py, t.key),
            path,
            t.slot,
            t.parent,
            t.record,
        );
        self.make(py, &self.classes.token, fields.into_pyobject(py)?)
    }

    fn build_node<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyAny>> {
        let n = &self.flat.nodes[index];
        let fields = (
            n.is_object,
            n.start,
            n.end,
            n.slot,
            n.parent,
            n.in_list,
            n.record,
            self.key(py, n.sole),
            n.keyed,
        );
        self.make(py, &self.classes.node, fields.into_pyobject(py)?)
    }

    fn context(&self, t: &Tok) -> bool {
        t.kind != TKind::Key
            && (t.phone || (t.parent >= 0 && self.flat.nodes[t.parent as usize].typed))
    }

    fn tok(&self, index: usize) -> PyResult<&Tok> {
        self.flat
            .tokens
            .get(index)
            .ok_or_else(|| pyo3::exceptions::PyIndexError::new_err("token index out of range"))
    }
}

/// `Structure.identified`'s answer: `(index, identifiers)` of each site that holds any, as a
/// read-only sequence of those tuples. Kept flat on the Rust side: rules/native/src/gather.rs
/// reads it without a tuple per site (a 79 kB body has ~800), Python code builds one on demand.
#[pyclass(frozen, module = "rules._native")]
pub struct Sites {
    pub(crate) items: Vec<(usize, Py<PyTuple>)>,
}

#[pymethods]
impl Sites {
    fn __len__(&self) -> usize {
        self.items.len()
    }

    fn __getitem__<'py>(&self, py: Python<'py>, index: isize) -> PyResult<Bound<'py, PyTuple>> {
        let (token, ids) = &self.items[seq::position(index, self.items.len(), "site")?];
        (*token, ids.bind(py)).into_pyobject(py)
    }

    /// Equal to any sequence of the same `(index, identifiers)` tuples (the reference's list);
    /// anything that is not iterable is left to Python (unequal).
    fn __eq__<'py>(slf: &Bound<'py, Self>, other: &Bound<'py, PyAny>) -> PyResult<PyObject> {
        seq::list_eq(slf.as_any(), other)
    }

    fn __reversed__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyIterator>> {
        seq::list_reversed(slf.as_any())
    }
}

#[pymethods]
impl Structure {
    /// `(index, identify(value, phone_context))` of every site whose answer is not empty;
    /// `identify` is asked once per distinct token bytes, context and type: `memo` keeps it.
    fn identified<'py>(
        &self,
        py: Python<'py>,
        memo: &Bound<'py, Memo>,
        identify: &Bound<'py, PyAny>,
    ) -> PyResult<Sites> {
        let body = self.body.as_bytes(py);
        let mut memo = memo.try_borrow_mut()?;
        let mut out = Vec::new();
        for (index, t) in self.flat.tokens.iter().enumerate() {
            let ctx = self.context(t);
            if !(ctx || t.site) {
                continue;
            }
            let slot = usize::from(ctx) * 2 + usize::from(t.kind == TKind::Num);
            let ids = memo.get_or(py, slot, &body[t.start..t.end], || {
                identify.call1((self.value(py, t)?, ctx))
            })?;
            if !ids.is_empty() {
                out.push((index, ids.unbind()));
            }
        }
        Ok(Sites { items: out })
    }

    /// `(index, value, phone_context)` of every token that may hold an identifier.
    fn sites<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut out = Vec::new();
        for (index, t) in self.flat.tokens.iter().enumerate() {
            let ctx = self.context(t);
            if ctx || t.site {
                out.push((index, self.value(py, t)?, ctx).into_pyobject(py)?);
            }
        }
        PyList::new(py, out)
    }

    fn token<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyAny>> {
        let t = self.tok(index)?;
        let mut path = self.node_path(py, t.parent)?;
        path.extend(self.part(py, t.part)?);
        self.build_token(py, t, PyTuple::new(py, path)?)
    }

    fn node<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyAny>> {
        if index >= self.flat.nodes.len() {
            return Err(pyo3::exceptions::PyIndexError::new_err(
                "node index out of range",
            ));
        }
        self.build_node(py, index)
    }

    /// Indexes of the tokens whose bytes overlap `[start, end)`.
    fn overlapping(&self, start: usize, end: usize) -> Vec<usize> {
        let tokens = &self.flat.tokens;
        let mut index = tokens
            .partition_point(|t| t.start <= start)
            .saturating_sub(1);
        let mut out = Vec::new();
        while index < tokens.len() && tokens[index].start < end {
            if tokens[index].end > start {
                out.push(index);
            }
            index += 1;
        }
        out
    }

    /// `(record, field kind, value)` of every value whose member key (for a list element: the
    /// key of the nearest keyed container) `kind_of` names a field of; record -1: outside every
    /// record (the body itself, an object under a key), which no cut can remove.
    fn records<'py>(
        &self,
        py: Python<'py>,
        kind_of: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut kinds: HashMap<u32, Option<Bound<'py, PyAny>>> = HashMap::new();
        let mut out = Vec::new();
        for t in &self.flat.tokens {
            if t.kind == TKind::Key {
                continue;
            }
            let name = if t.key != NONE {
                t.key
            } else {
                self.list_key(t.parent)
            };
            if name == NONE {
                continue;
            }
            if !kinds.contains_key(&name) {
                let kind = kind_of.call1((self.key(py, name),))?;
                kinds.insert(name, (!kind.is_none()).then_some(kind));
            }
            if let Some(Some(kind)) = kinds.get(&name) {
                out.push((t.record, kind, self.value(py, t)?).into_pyobject(py)?);
            }
        }
        PyList::new(py, out)
    }

    fn __len__(&self) -> usize {
        self.flat.tokens.len()
    }

    /// Every token and node, as the reference's `(tokens, nodes)` tuples.
    fn all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let mut paths: Vec<Bound<'py, PyTuple>> = Vec::with_capacity(self.flat.nodes.len());
        for n in &self.flat.nodes {
            paths.push(self.extend(py, n.parent, &paths, n.part)?);
        }
        let mut tokens = Vec::with_capacity(self.flat.tokens.len());
        for t in &self.flat.tokens {
            tokens.push(self.build_token(py, t, self.extend(py, t.parent, &paths, t.part)?)?);
        }
        let nodes = (0..self.flat.nodes.len())
            .map(|i| self.build_node(py, i))
            .collect::<PyResult<Vec<_>>>()?;
        PyTuple::new(py, [PyTuple::new(py, tokens)?, PyTuple::new(py, nodes)?])
    }
}

impl Structure {
    /// The key of the nearest container at or above `node` that is a member (NONE: none).
    pub(crate) fn list_key(&self, mut node: isize) -> u32 {
        while node >= 0 {
            let nd = &self.flat.nodes[node as usize];
            if let Part::Key(key) = nd.part {
                return key;
            }
            node = nd.parent;
        }
        NONE
    }

    /// `paths[parent] + (part,)` (the root's path is empty).
    fn extend<'py>(
        &self,
        py: Python<'py>,
        parent: isize,
        paths: &[Bound<'py, PyTuple>],
        part: Part,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let mut parts: Vec<Bound<'py, PyAny>> = if parent >= 0 {
            paths[parent as usize].iter().collect()
        } else {
            Vec::new()
        };
        parts.extend(self.part(py, part)?);
        PyTuple::new(py, parts)
    }
}

/// The flat scan of `body`; the reference's `JsonBodyError` if it is not JSON it reads.
#[pyfunction]
pub fn json_structure<'py>(
    py: Python<'py>,
    body: &Bound<'py, PyBytes>,
    meta_keys: &Bound<'py, PyAny>,
    max_depth: i64,
    context: &Bound<'py, PyTuple>,
    facts: &Bound<'py, KeyFacts>,
) -> PyResult<Structure> {
    scan(py, body, meta_keys, max_depth, context, facts)
}

/// Every token and container of `body`, in document order, as `(tokens, nodes)` tuples of
/// the reference's NamedTuples; its `JsonBodyError` if the body is not JSON it reads.
#[pyfunction]
pub fn json_scan<'py>(
    py: Python<'py>,
    body: &Bound<'py, PyBytes>,
    meta_keys: &Bound<'py, PyAny>,
    max_depth: i64,
    context: &Bound<'py, PyTuple>,
    facts: &Bound<'py, KeyFacts>,
) -> PyResult<Bound<'py, PyTuple>> {
    scan(py, body, meta_keys, max_depth, context, facts)?.all(py)
}
