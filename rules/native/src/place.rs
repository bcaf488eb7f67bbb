//! `place`: the denied text candidates placed on the tokens they touch (its reference:
//! `rules.detect.pipeline._place_reference`, over `scan.shortest_denied` and
//! `Structure.overlapping`). Of the denied candidates, the shortest of each type from each start
//! (the first listed on a tie, in the order of the first one of its type and start); each denies
//! the tokens its span overlaps, a token keeping the type that denied it first. Types are
//! compared by identity (`RuleType` members), as rules/native/src/gather.rs does.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use rustc_hash::FxHashMap;

use crate::structure::Structure;

/// One denied candidate: its type, and its byte span.
struct Span<'py> {
    kind: Bound<'py, PyAny>,
    start: usize,
    end: usize,
}

/// The shortest denied candidate of each type from each start, in first-seen order.
fn shortest<'py>(spans: &Bound<'py, PyAny>) -> PyResult<Vec<Span<'py>>> {
    let mut chosen: Vec<Span<'py>> = Vec::new();
    let mut at: FxHashMap<(usize, usize), usize> = FxHashMap::default();
    for c in spans.try_iter()? {
        let c = c?;
        let c = c.downcast::<PyTuple>()?; // a `Candidate`: (kind, start, end, forms)
        let kind = c.get_item(0)?;
        let (start, end): (usize, usize) = (c.get_item(1)?.extract()?, c.get_item(2)?.extract()?);
        match at.get(&(kind.as_ptr() as usize, start)) {
            Some(&i) if end < chosen[i].end => chosen[i] = Span { kind, start, end },
            Some(_) => {}
            None => {
                at.insert((kind.as_ptr() as usize, start), chosen.len());
                chosen.push(Span { kind, start, end });
            }
        }
    }
    Ok(chosen)
}

/// `(tokens, unplaced)`: `dict(placed)` with each token the shortest denied text candidates
/// overlap added (the first type that denied it kept), and how many of them overlap no token.
#[pyfunction]
pub fn place<'py>(
    py: Python<'py>,
    structure: &Bound<'py, Structure>,
    placed: &Bound<'py, PyAny>,
    spans: &Bound<'py, PyAny>,
) -> PyResult<(Bound<'py, PyDict>, usize)> {
    let tokens = &structure.get().flat.tokens;
    let out = PyDict::new(py);
    for item in placed.try_iter()? {
        let item = item?;
        let pair = item.downcast::<PyTuple>()?; // (token index, type)
        out.set_item(pair.get_item(0)?, pair.get_item(1)?)?;
    }
    let mut unplaced = 0;
    for span in shortest(spans)? {
        let mut index = tokens
            .partition_point(|t| t.start <= span.start)
            .saturating_sub(1);
        let mut touched = false;
        while index < tokens.len() && tokens[index].start < span.end {
            if tokens[index].end > span.start {
                touched = true;
                if !out.contains(index)? {
                    out.set_item(index, &span.kind)?;
                }
            }
            index += 1;
        }
        unplaced += usize::from(!touched);
    }
    Ok((out, unplaced))
}
