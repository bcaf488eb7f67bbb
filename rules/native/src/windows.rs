//! `windows`: the input spans verify reads again around a splice's joins (its reference:
//! `rules.detect.joins._windows`). Each replaced region with `window` bytes either side, each
//! edge moved outward until no token and no input candidate straddles it, overlapping or
//! touching windows joined. Python's version builds a `Token` per probe and walks the
//! candidates' spans in Python; here both are plain arrays.

use pyo3::prelude::*;
use pyo3::types::PySet;

use crate::json::Tok;
use crate::records::each_candidate;
use crate::structure::Structure;

/// The input candidates' spans sorted by start, and the furthest end reached so far.
struct Blocks {
    spans: Vec<(usize, usize)>,
    reach: Vec<usize>,
}

impl Blocks {
    fn of(text: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut spans = Vec::new();
        let mut reach = Vec::new();
        let mut furthest = 0;
        each_candidate(text, |_, start, end, _| {
            furthest = furthest.max(end);
            spans.push((start, end));
            reach.push(furthest);
            Ok(())
        })?;
        Ok(Blocks { spans, reach })
    }

    /// The widest span `(min start, max end)` of the candidates with start < cut < end.
    fn straddling(&self, cut: usize, out: &mut Option<(usize, usize)>) {
        let mut i = self.spans.partition_point(|&(s, _)| s < cut);
        while i > 0 && self.reach[i - 1] > cut {
            i -= 1;
            let (s, e) = self.spans[i];
            if e > cut {
                widen(out, s, e);
            }
        }
    }
}

fn widen(out: &mut Option<(usize, usize)>, s: usize, e: usize) {
    *out = Some(out.map_or((s, e), |(lo, hi)| (lo.min(s), hi.max(e))));
}

/// The token with start < cut < end, if any (tokens never overlap).
fn token_straddling(tokens: &[Tok], cut: usize, out: &mut Option<(usize, usize)>) {
    let i = tokens.partition_point(|t| t.start < cut);
    if i > 0 && tokens[i - 1].end > cut {
        widen(out, tokens[i - 1].start, tokens[i - 1].end);
    }
}

/// `cut` moved outward until no token and no input candidate straddles it.
fn safe_cut(tokens: &[Tok], blocks: &Blocks, mut cut: usize, left: bool) -> usize {
    loop {
        let mut span = None;
        token_straddling(tokens, cut, &mut span);
        blocks.straddling(cut, &mut span);
        match span {
            None => return cut,
            Some((lo, hi)) => cut = if left { lo } else { hi },
        }
    }
}

/// `joins._windows(structure, _Blocks(text), replaced, size)` with `window` bytes either side.
#[pyfunction]
pub fn windows(
    structure: &Bound<'_, Structure>,
    text: &Bound<'_, PyAny>,
    replaced: Vec<(usize, usize, usize)>,
    size: usize,
    window: usize,
) -> PyResult<Vec<(usize, usize)>> {
    let tokens = &structure.get().flat.tokens;
    Ok(merged(tokens, &Blocks::of(text)?, &replaced, size, window))
}

fn merged(
    tokens: &[Tok],
    blocks: &Blocks,
    replaced: &[(usize, usize, usize)],
    size: usize,
    window: usize,
) -> Vec<(usize, usize)> {
    let mut spans: Vec<(usize, usize)> = replaced
        .iter()
        .map(|&(start, end, _)| {
            (
                safe_cut(tokens, blocks, start.saturating_sub(window), true),
                safe_cut(tokens, blocks, (end + window).min(size), false),
            )
        })
        .collect();
    spans.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
    for (low, high) in spans {
        match merged.last_mut() {
            Some(last) if low <= last.1 => last.1 = last.1.max(high),
            _ => merged.push((low, high)),
        }
    }
    merged
}

/// `joins._reused`: the `(kind, normal)` of each candidate of `reuse` no window touches.
fn reused<'py>(
    reuse: &Bound<'py, PyAny>,
    windows: &[(usize, usize)],
    out: &Bound<'py, PySet>,
) -> PyResult<()> {
    each_candidate(reuse, |kind, start, end, forms| {
        let next = windows.partition_point(|w| w.0 <= start);
        if (next > 0 && start < windows[next - 1].1) || windows.get(next).is_some_and(|w| end > w.0)
        {
            return Ok(()); // starts inside a window, or reaches into the next one
        }
        for normal in forms.iter_borrowed() {
            out.add((kind, normal))?;
        }
        Ok(())
    })
}

/// `joins._shifted`: where each input window is in the output, one walk over both.
fn shifted(windows: &[(usize, usize)], replaced: &[(usize, usize, usize)]) -> Vec<(usize, usize)> {
    let (mut shift, mut i) = (0, 0);
    let mut at = |position: usize| {
        while i < replaced.len() && replaced[i].1 <= position {
            shift += replaced[i].1 - replaced[i].0 - replaced[i].2;
            i += 1;
        }
        position - shift
    };
    windows
        .iter()
        .map(|&(start, end)| (at(start), at(end)))
        .collect()
}

/// `(ids, spans)` for `joins.output_ids`: the identifiers of the `reuse` candidates no window
/// touches, and the output spans of the windows around the joins (to read again).
#[pyfunction]
pub fn outside_windows<'py>(
    py: Python<'py>,
    structure: &Bound<'py, Structure>,
    text: &Bound<'py, PyAny>,
    reuse: &Bound<'py, PyAny>,
    replaced: Vec<(usize, usize, usize)>,
    size: usize,
    window: usize,
) -> PyResult<(Bound<'py, PySet>, Vec<(usize, usize)>)> {
    let tokens = &structure.get().flat.tokens;
    let windows = merged(tokens, &Blocks::of(text)?, &replaced, size, window);
    let ids = PySet::empty(py)?;
    reused(reuse, &windows, &ids)?;
    Ok((ids, shifted(&windows, &replaced)))
}
