//! `rules._native`: the compiled finding core of denyproxy's text scanner.
//!
//! `find(data, char_spans)` returns exactly what `rules.textfind.find_bytes(data)` (or, with
//! `char_spans`, `find_text(data.decode())`) returns: every raw candidate `(kind, start, end,
//! text)` of both readings, in the same order. Normalising stays in Python (rules/readings.py).

mod classes;
mod email;
mod linkedin;
mod phone;
mod tables;
mod text;
mod view;

use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

const EMAIL: u8 = 0;
const LINKEDIN: u8 = 1;
const PHONE: u8 = 2;
const NUMBER: u8 = 3;

/// One raw candidate: its kind, its span in the original text (characters), and where its
/// text lies in the reading it was found in (0: as written, 1: decoded).
struct Raw {
    kind: u8,
    start: usize,
    end: usize,
    reading: u8,
    from: usize,
    to: usize,
}

/// Every candidate span of one reading, in the reference's order.
fn find_all(t: &[u32]) -> Vec<(u8, usize, usize)> {
    let mut found = Vec::new();
    let mut spans = Vec::new();
    type Finder = fn(&[u32], &mut Vec<(usize, usize)>);
    let finders: [(u8, Finder); 4] = [
        (EMAIL, email::emails),
        (LINKEDIN, linkedin::linkedins),
        (PHONE, phone::phone_windows),
        (NUMBER, phone::number_tokens),
    ];
    for (kind, finder) in finders {
        spans.clear();
        finder(t, &mut spans);
        found.extend(spans.iter().map(|&(s, e)| (kind, s, e)));
    }
    found
}

struct Found<'a> {
    readings: [&'a [u32]; 2],
    raws: Vec<Raw>,
    seen: HashMap<(u8, usize, usize), Vec<usize>>,
}

impl Found<'_> {
    /// Adds a candidate unless the same kind, span and text is already listed.
    fn add(&mut self, raw: Raw) {
        let key = (raw.kind, raw.start, raw.end);
        let text = &self.readings[raw.reading as usize][raw.from..raw.to];
        let indices = self.seen.entry(key).or_default();
        for &i in indices.iter() {
            let old = &self.raws[i];
            if &self.readings[old.reading as usize][old.from..old.to] == text {
                return;
            }
        }
        indices.push(self.raws.len());
        self.raws.push(raw);
    }
}

/// Every raw candidate of `t` (spans in characters), read as written and decoded.
fn find_chars(t: &[u32], decoded: Option<&view::View>) -> Vec<Raw> {
    let empty: &[u32] = &[];
    let mut found = Found {
        readings: [t, decoded.map_or(empty, |v| &v.text)],
        raws: Vec::new(),
        seen: HashMap::new(),
    };
    for (kind, start, end) in find_all(t) {
        found.add(Raw { kind, start, end, reading: 0, from: start, to: end });
    }
    if let Some(v) = decoded {
        for (kind, from, to) in find_all(&v.text) {
            let (start, end) = v.span(from, to);
            found.add(Raw { kind, start, end, reading: 1, from, to });
        }
    }
    found.raws
}

/// Every raw candidate of a UTF-8 body: `(kind, start, end, text)`, spans in bytes, or in
/// characters (of its surrogateescape decoding) when `char_spans` is true.
#[pyfunction]
fn find<'py>(py: Python<'py>, data: &Bound<'py, PyBytes>, char_spans: bool) -> PyResult<Bound<'py, PyList>> {
    let decoded = text::decode(data.as_bytes());
    let t = &decoded.chars;
    let v = view::decoded(t);
    let raws = find_chars(t, v.as_ref());
    let readings: [&[u32]; 2] = [t, v.as_ref().map_or(&[][..], |v| &v.text)];
    let offset = |i: usize| if char_spans { i } else { decoded.offsets[i] };
    let mut items = Vec::with_capacity(raws.len());
    for raw in &raws {
        let text = text::to_string(&readings[raw.reading as usize][raw.from..raw.to]);
        let item = (raw.kind, offset(raw.start), offset(raw.end), PyString::new(py, &text));
        items.push(PyTuple::new(py, [
            item.0.into_pyobject(py)?.into_any(),
            item.1.into_pyobject(py)?.into_any(),
            item.2.into_pyobject(py)?.into_any(),
            item.3.into_any(),
        ])?);
    }
    PyList::new(py, items)
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(find, m)?)
}
