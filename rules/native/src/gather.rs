//! The inspection's bookkeeping over its sites and text candidates, in one call each
//! (their reference: rules/detect/gather.py):
//!
//! * `asked(sites, text, email, domain, domains)`: what to ask the store, as
//!   `rules.detect.match.query_for` builds it from every identifier of both detectors: each
//!   type's normal forms, and for the emails the parent domains of each distinct host
//!   (`domains(host)`, the one normaliser's, asked once per host);
//! * `denied(sites, text, hits)`: the sites and text candidates that hold a denied identifier
//!   (`hits`: `(type, normals)` pairs), with the type that denied each site.
//!
//! Types are compared by identity (`RuleType` members): hashing an enum member is a Python call.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PySet, PyString, PyTuple};
use rustc_hash::FxHashSet;

use crate::records::{each_candidate, Candidates};
use crate::structure::Sites;

/// One set per type, found by identity; a handful of types, so a list beats a map.
struct Sets<'py> {
    kinds: Vec<(Bound<'py, PyAny>, Bound<'py, PySet>)>,
}

impl<'py> Sets<'py> {
    fn at(&self, kind: &Bound<'py, PyAny>) -> Option<usize> {
        self.kinds.iter().position(|(k, _)| k.is(kind))
    }

    fn of(&mut self, kind: &Bound<'py, PyAny>) -> PyResult<&Bound<'py, PySet>> {
        let at = match self.at(kind) {
            Some(at) => at,
            None => {
                self.kinds.push((kind.clone(), PySet::empty(kind.py())?));
                self.kinds.len() - 1
            }
        };
        Ok(&self.kinds[at].1)
    }

    fn get(&self, kind: &Bound<'py, PyAny>) -> Option<&Bound<'py, PySet>> {
        self.at(kind).map(|at| &self.kinds[at].1)
    }
}

/// Calls `f` on each item of a tuple or list (borrowed: no reference count touched per item),
/// or of any other iterable.
fn each<'py>(
    seq: &Bound<'py, PyAny>,
    mut f: impl FnMut(&Bound<'py, PyAny>) -> PyResult<()>,
) -> PyResult<()> {
    if let Ok(items) = seq.downcast::<PyTuple>() {
        return items.iter_borrowed().try_for_each(|item| f(&item));
    }
    if let Ok(items) = seq.downcast::<PyList>() {
        return items.iter().try_for_each(|item| f(&item));
    }
    seq.try_iter()?.try_for_each(|item| f(&item?))
}

/// Calls `f` on each site's `(index, identifiers)`: read off a compiled `Sites` as they are
/// (no tuple per site), else off each `(index, ids)` tuple of any sequence.
fn each_site<'py>(
    sites: &Bound<'py, PyAny>,
    mut f: impl FnMut(&dyn Fn() -> PyResult<Bound<'py, PyAny>>, &Bound<'py, PyTuple>) -> PyResult<()>,
) -> PyResult<()> {
    let py = sites.py();
    if let Ok(flat) = sites.downcast::<Sites>() {
        return flat.get().items.iter().try_for_each(|(index, ids)| {
            f(&|| Ok(index.into_pyobject(py)?.into_any()), ids.bind(py))
        });
    }
    each(sites, |site| {
        let site = site.downcast::<PyTuple>()?;
        let ids = site.get_borrowed_item(1)?;
        f(&|| site.get_item(0), ids.downcast::<PyTuple>()?)
    })
}

/// `query_for` of every identifier of `sites` and `text`: type → normal forms, emails' domains.
#[pyfunction]
pub fn asked<'py>(
    py: Python<'py>,
    sites: &Bound<'py, PyAny>,
    text: &Bound<'py, PyAny>,
    email: &Bound<'py, PyAny>,
    domain: &Bound<'py, PyAny>,
    domains: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut sets = Sets { kinds: Vec::new() };
    each_site(sites, |_, ids| {
        for id in ids.iter_borrowed() {
            let id = id.downcast::<PyTuple>()?;
            sets.of(&*id.get_borrowed_item(0)?)?
                .add(id.get_borrowed_item(1)?)?;
        }
        Ok(())
    })?;
    each_candidate(text, |kind, _, _, forms| {
        let set = sets.of(kind)?;
        forms.iter_borrowed().try_for_each(|form| set.add(form))
    })?;
    let hosts = email_hosts(sets.get(email))?;
    if let Some(hosts) = hosts {
        let set = sets.of(domain)?.clone();
        for host in hosts {
            for parent in domains.call1((host,))?.try_iter()? {
                set.add(parent?)?;
            }
        }
    }
    let out = PyDict::new(py);
    for (kind, set) in sets.kinds {
        out.set_item(kind, set)?;
    }
    Ok(out)
}

/// The distinct hosts of the emails (`normal.rpartition("@")[2]`); None without emails.
fn email_hosts(emails: Option<&Bound<'_, PySet>>) -> PyResult<Option<Vec<String>>> {
    let Some(emails) = emails else {
        return Ok(None);
    };
    let mut seen: FxHashSet<String> = FxHashSet::default();
    let mut hosts = Vec::new();
    for normal in emails.iter() {
        let normal = normal.downcast_into::<PyString>()?;
        let text = normal.to_cow()?;
        let host = text.rsplit_once('@').map_or(&*text, |(_, host)| host);
        if !seen.contains(host) {
            seen.insert(host.to_owned());
            hosts.push(host.to_owned());
        }
    }
    Ok(Some(hosts))
}

/// `([(index, type)], [candidate])`: the sites holding an identifier `hits` holds (with the
/// type of the first such identifier), and the text candidates holding one of their type.
#[pyfunction]
pub fn denied<'py>(
    py: Python<'py>,
    sites: &Bound<'py, PyAny>,
    text: &Bound<'py, PyAny>,
    hits: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let mut sets = Sets { kinds: Vec::new() };
    for pair in hits.try_iter()? {
        let pair = pair?;
        let pair = pair.downcast_into::<PyTuple>()?;
        let set = pair.get_item(1)?.downcast_into::<PySet>()?;
        sets.kinds.push((pair.get_item(0)?, set));
    }
    let placed = PyList::empty(py);
    each_site(sites, |index, ids| {
        if let Some(kind) = first_hit(&sets, ids)? {
            placed.append((index()?, kind))?;
        }
        Ok(())
    })?;
    let spans = PyList::empty(py);
    if let Ok(records) = text.downcast::<Candidates>() {
        // the denied few built as `Candidate`s, the rest read where they are
        let records = records.get();
        let named = records.named(py)?;
        for r in &records.items {
            if let Some(set) = sets.get(records.kind(py, r)) {
                if any_in(set, r.forms.bind(py))? {
                    spans.append(records.make(py, &named, r)?)?;
                }
            }
        }
        return PyTuple::new(py, [placed.into_any(), spans.into_any()]);
    }
    each(text, |c| {
        let t = c.downcast::<PyTuple>()?;
        if let Some(set) = sets.get(&*t.get_borrowed_item(0)?) {
            if any_in(set, t.get_borrowed_item(3)?.downcast::<PyTuple>()?)? {
                spans.append(c)?;
            }
        }
        Ok(())
    })?;
    PyTuple::new(py, [placed.into_any(), spans.into_any()])
}

/// The type of the first identifier of `ids` whose type's set holds it.
fn first_hit<'py>(
    sets: &Sets<'py>,
    ids: &Bound<'py, PyTuple>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    for id in ids.iter_borrowed() {
        let id = id.downcast::<PyTuple>()?;
        let kind = id.get_borrowed_item(0)?;
        if let Some(set) = sets.get(&kind) {
            if set.contains(id.get_borrowed_item(1)?)? {
                return Ok(Some(kind.to_owned()));
            }
        }
    }
    Ok(None)
}

fn any_in(set: &Bound<'_, PySet>, forms: &Bound<'_, PyTuple>) -> PyResult<bool> {
    for form in forms.iter_borrowed() {
        if set.contains(form)? {
            return Ok(true);
        }
    }
    Ok(false)
}
