//! The structural pass of `rules/detect/jsonspan.py` over the raw bytes of a JSON body, flat.
//!
//! The same grammar, the same state machine and the same errors as the reference
//! (`jsonspan.scan`), but no Python object per token: every string value, object key and number
//! becomes a `Tok`, every container a `Nd`, plain Rust records. Python asks only for what it
//! needs (rules/native/src/structure.rs): the sites (tokens that may hold an identifier, with
//! their phone-key context) and the few tokens and nodes a splice touches. Every input the
//! reference rejects raises its `JsonBodyError`: invalid JSON, invalid UTF-8 inside a string,
//! lone surrogate escapes, nesting deeper than `max_depth`, ints longer than Python converts.

use std::borrow::Cow;

use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

use rustc_hash::FxHashMap;

use crate::lex::{lex, skip_ws, unescape, Lexeme};

pub const NONE: u32 = u32::MAX;
/// A number below has fewer than seven integer digits: no phone, and it may describe
/// (`rules.detect.contact._SMALL`, `rules.detect.pipeline._PHONE_SIZE`).
const SMALL: f64 = 1e6;

/// What the grammar expects next (the reference's `_VALUE, _MEMBER, _NEXT, _END`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Value,
    Member,
    Next,
    End,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum TKind {
    Str,
    Key,
    Num,
}

/// The last part of a path, after the parent's path: a member key (id), an index, or none.
#[derive(Clone, Copy)]
pub enum Part {
    None,
    Key(u32),
    Index(usize),
}

/// A string value, object key or number (the reference's `Token`, value left in the body).
#[derive(Clone, Copy)]
pub struct Tok {
    pub kind: TKind,
    pub start: usize,
    pub end: usize,
    pub slot: (usize, usize),
    pub parent: isize,
    pub record: isize,
    pub key: u32, // member key id of a value in an object; NONE otherwise
    pub part: Part,
    pub escaped: bool,
    pub float: bool,
    pub phone: bool, // a phone key on its path (its own member key included)
    pub site: bool,  // may hold an identifier by its text or size (phone context aside)
}

/// An object or array (the reference's `Node`).
pub struct Nd {
    pub is_object: bool,
    pub start: usize,
    pub end: usize,
    pub slot: Option<(usize, usize)>,
    pub parent: isize,
    pub in_list: bool,
    pub record: isize,
    pub sole: u32,
    pub keyed: u8, // 1: an object of objects (one or more), 2: some of them objects of objects
    pub part: Part,
    pub typed: bool, // says it is a phone: `{"type": "phone", …}`
}

/// An open container (the reference's `_Frame`).
struct Frame {
    node: usize,
    is_object: bool,
    start: usize,
    slot_start: usize,
    part: Part,
    record: isize,
    count: usize,
    member_start: usize,
    key: u32,
    key_span: (usize, usize),
    key_token: usize,
    sole: u32,
    many: bool,
    objects: usize, // members whose value is an object
    nested: bool,   // one of them is an object of objects
    phone: bool,
    typed: bool, // says it is a phone: `{"type": "phone", …}`
}

/// What a key is: asked of Python once per distinct key, kept across scans in `Rules::facts`
/// (all but `site`, which Rust computes once per distinct key of a scan).
#[derive(Default, Clone, Copy)]
struct Facts {
    meta: bool,
    content: bool, // a string member under it is content (`describes` says no)
    phone: bool,
    type_key: bool,
    site: bool, // the key's own text may hold an identifier (`could_hold`)
}

impl Facts {
    fn bits(self) -> u8 {
        u8::from(self.meta)
            | u8::from(self.content) << 1
            | u8::from(self.phone) << 2
            | u8::from(self.type_key) << 3
    }

    fn of(bits: u8) -> Self {
        Self {
            meta: bits & 1 != 0,
            content: bits & 2 != 0,
            phone: bits & 4 != 0,
            type_key: bits & 8 != 0,
            site: false,
        }
    }
}

/// What the rules say of each object key, for one set of meta keys, across scans
/// (rules/detect/finder.py keeps one per set): held as Rust strings, so a key seen before costs
/// a hash here, not a Python string and a dict lookup per key and body. Bounded: keys come from
/// upstream bodies; past `limit` it starts afresh (a cleared cache only asks Python again).
#[pyclass(module = "rules._native")]
pub struct KeyFacts {
    known: FxHashMap<Box<str>, u8>,
    limit: usize,
}

#[pymethods]
impl KeyFacts {
    #[new]
    fn new(limit: usize) -> Self {
        KeyFacts {
            known: FxHashMap::default(),
            limit: limit.max(1),
        }
    }

    fn __len__(&self) -> usize {
        self.known.len()
    }
}

/// The Python rules a scan asks: `(meta_keys, describes, is_phone_key, is_phone_type,
/// TYPE_KEYS, JsonBodyError)`, and `facts`: what they said of each key, the caller's cache for
/// these `meta_keys` (rules/detect/finder.py).
pub struct Rules<'py> {
    pub facts: Bound<'py, KeyFacts>,
    pub meta: Bound<'py, PyAny>,
    pub describes: Bound<'py, PyAny>,
    pub phone_key: Bound<'py, PyAny>,
    pub phone_type: Bound<'py, PyAny>,
    pub type_keys: Bound<'py, PyAny>,
    pub error: Bound<'py, PyType>,
    pub int: Bound<'py, PyAny>,
}

/// A scan's result: flat records and the distinct keys they name.
pub struct Flat {
    pub tokens: Vec<Tok>,
    pub nodes: Vec<Nd>,
    pub keys: Vec<String>,
}

pub struct Scanner<'a, 'py> {
    py: Python<'py>,
    body: &'a [u8],
    /// The body as a str when it is valid UTF-8 (checked once, not per string).
    utf8: Option<&'a str>,
    rules: &'a Rules<'py>,
    max_depth: i64,
    stack: Vec<Frame>,
    tokens: Vec<Tok>,
    nodes: Vec<Option<Nd>>,
    expect: Expect,
    key_ids: FxHashMap<String, u32>,
    keys: Vec<String>,
    facts: Vec<Facts>,
    /// The key that followed each key in its object last time, and the first key of the last
    /// object at each depth: records repeat their keys in order, so a key is mostly read by
    /// one compare with the guess, not a hash and a probe (`key_id`).
    next_key: Vec<u32>,
    first_key: Vec<u32>,
    phone_types: FxHashMap<String, bool>,
}

/// What a byte of a string is to `could_hold`: 2 holds by itself (non-ASCII, `@`, `%`, `&`,
/// a backslash), 1 a digit, 4 a `k` (`linkedin` is looked for only after one), 0 nothing.
const HOLDS: [u8; 256] = {
    let mut table = [0; 256];
    let mut c = 0;
    while c < 256 {
        table[c] = match c as u8 {
            0x80.. | b'@' | b'%' | b'&' | b'\\' => 2,
            b'0'..=b'9' => 1,
            b'k' | b'K' => 4,
            _ => 0,
        };
        c += 1;
    }
    table
};

/// Could this text hold an identifier? Over-matches `rules.detect.match.candidate` on purpose
/// (its reference: `rules.detect.structure.could_hold`): any non-ASCII text, `@`, `%`, `&`,
/// a backslash, seven digits, or `linkedin` in any case. One pass (a table byte by byte beat
/// eight-byte words here: values are short, and most end early or hold few marks).
pub fn could_hold(text: &str) -> bool {
    let b = text.as_bytes();
    let (mut digits, mut seen) = (0, 0);
    for &c in b {
        let class = HOLDS[c as usize];
        if class == 2 {
            return true;
        }
        digits += usize::from(class & 1);
        seen |= class;
    }
    digits >= 7 || (seen & 4 != 0 && has_linkedin(b))
}

/// `a == b`, inline for the short strings keys are (two overlapping word loads, no `bcmp`).
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8"));
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4"));
    match n {
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        _ => a == b,
    }
}

/// Does `linkedin` occur in `b`, in any case? Tested at each `k` (rarer than an `l`).
fn has_linkedin(b: &[u8]) -> bool {
    (3..b.len().saturating_sub(4))
        .any(|k| b[k] | 0x20 == b'k' && b[k - 3..k + 5].eq_ignore_ascii_case(b"linkedin"))
}

impl<'a, 'py> Scanner<'a, 'py> {
    pub fn new(py: Python<'py>, body: &'a [u8], rules: &'a Rules<'py>, max_depth: i64) -> Self {
        Self {
            py,
            body,
            utf8: std::str::from_utf8(body).ok(),
            rules,
            max_depth,
            stack: Vec::new(),
            // A JSON token takes a dozen bytes or more: room for most bodies without a regrowth.
            tokens: Vec::with_capacity(body.len() / 12),
            nodes: Vec::with_capacity(body.len() / 64),
            expect: Expect::Value,
            key_ids: FxHashMap::default(),
            keys: Vec::new(),
            facts: Vec::new(),
            next_key: Vec::new(),
            first_key: Vec::new(),
            phone_types: FxHashMap::default(),
        }
    }

    fn error(&self, message: String) -> PyErr {
        PyErr::from_type(self.rules.error.clone(), message)
    }

    fn invalid(&self, at: usize) -> PyErr {
        self.error(format!("invalid JSON at byte {at}"))
    }

    /// Every token and node of the body, or the reference's `JsonBodyError`.
    pub fn run(mut self) -> PyResult<Flat> {
        let body = self.body;
        let mut pos = 0;
        loop {
            pos = skip_ws(body, pos);
            let comma = body.get(pos) == Some(&b',');
            let at = pos;
            if comma {
                pos = skip_ws(body, pos + 1);
            }
            if pos >= body.len() {
                if comma {
                    return Err(self.invalid(at));
                }
                break;
            }
            pos = self.step(pos, comma)?;
        }
        if self.expect != Expect::End {
            return Err(self.error("truncated or empty JSON".to_owned()));
        }
        Ok(Flat {
            tokens: self.tokens,
            nodes: self.nodes.into_iter().flatten().collect(),
            keys: self.keys,
        })
    }

    /// Reads the token at `pos`; where the next one may start.
    fn step(&mut self, pos: usize, comma: bool) -> PyResult<usize> {
        let lexeme = lex(self.body, pos);
        if let Lexeme::Close = lexeme {
            self.close(pos, comma)?;
            return Ok(pos + 1);
        }
        let is_key = matches!(lexeme, Lexeme::Key { .. });
        if matches!(lexeme, Lexeme::Bad) || !self.ready(comma, is_key) {
            // The reference names where its regex group starts: a key's is its colon part.
            let at = if let Lexeme::Key { end, .. } = lexeme {
                end
            } else {
                pos
            };
            return Err(self.invalid(at));
        }
        match lexeme {
            Lexeme::Key { end, escaped, next } => {
                self.member(pos, end, escaped)?;
                Ok(next)
            }
            Lexeme::Str { end, escaped } => {
                let text = self.text(pos, end, escaped)?;
                self.string(pos, end, escaped, &text)?;
                Ok(end)
            }
            Lexeme::Num { end, float } => {
                let size = self.number(pos, end, float)?;
                self.scalar(TKind::Num, pos, end, false, float, size >= SMALL)?;
                self.done(end, Described::Number(size))?;
                Ok(end)
            }
            Lexeme::Open => {
                self.open(pos)?;
                Ok(pos + 1)
            }
            Lexeme::Literal { end } => {
                self.place(pos);
                self.done(end, Described::Literal)?;
                Ok(end)
            }
            Lexeme::Close | Lexeme::Bad => Err(self.invalid(pos)),
        }
    }

    /// Does the grammar allow a key (or value) here, after a comma or not?
    fn ready(&self, comma: bool, is_key: bool) -> bool {
        match self.expect {
            Expect::Next => comma && self.stack.last().is_some_and(|f| f.is_object == is_key),
            Expect::Member => !comma && is_key,
            Expect::Value => !comma && !is_key,
            Expect::End => false,
        }
    }

    /// A string's decoded value (checked: UTF-8, no lone surrogate).
    fn text(&self, start: usize, end: usize, escaped: bool) -> PyResult<Cow<'a, str>> {
        self.str_at(start + 1, end - 1)
            .and_then(|raw| {
                if escaped {
                    unescape(raw).map(Cow::Owned)
                } else {
                    Some(Cow::Borrowed(raw))
                }
            })
            .ok_or_else(|| self.error(format!("invalid string at byte {start}")))
    }

    /// `body[start..end]` as a str, if it is valid UTF-8.
    fn str_at(&self, start: usize, end: usize) -> Option<&'a str> {
        match self.utf8 {
            Some(utf8) => utf8.get(start..end),
            None => std::str::from_utf8(&self.body[start..end]).ok(),
        }
    }

    /// The absolute value of a number (checked: an int Python converts).
    fn number(&self, start: usize, end: usize, float: bool) -> PyResult<f64> {
        let text = self.str_at(start, end).ok_or_else(|| self.invalid(start))?;
        if float || text.len() <= 18 {
            let value: f64 = text.parse().map_err(|_| self.invalid(start))?;
            return Ok(value.abs());
        }
        // Python's own int(): more digits than it converts is the reference's error too.
        self.rules
            .int
            .call1((text,))
            .map_err(|_| self.error(format!("number too long at byte {start}")))?;
        Ok(f64::INFINITY) // 19 digits or more: a phone-sized number
    }

    /// Path part, member key and slot start of a value that starts at `start`.
    fn place(&mut self, start: usize) -> (Part, u32, usize) {
        let Some(frame) = self.stack.last_mut() else {
            return (Part::None, NONE, start);
        };
        if frame.is_object {
            return (Part::Key(frame.key), frame.key, frame.member_start);
        }
        frame.member_start = start;
        (Part::Index(frame.count), NONE, start)
    }

    /// Does the path to a child of the top frame (under `key`) hold a phone key?
    fn phone_below(&mut self, key: u32) -> PyResult<bool> {
        let Some(frame) = self.stack.last() else {
            return Ok(false);
        };
        Ok(frame.phone || (key != NONE && self.is_phone_key(key)))
    }

    fn string(&mut self, start: usize, end: usize, escaped: bool, text: &str) -> PyResult<()> {
        let key = self.scalar(TKind::Str, start, end, escaped, false, could_hold(text))?;
        if key != NONE && self.is_type_key(key) && self.is_phone_type(text)? {
            let frame = self.stack.last_mut();
            frame.expect("a key is only read inside an object").typed = true;
        }
        self.done(end, Described::Str)
    }

    fn scalar(
        &mut self,
        kind: TKind,
        start: usize,
        end: usize,
        escaped: bool,
        float: bool,
        site: bool,
    ) -> PyResult<u32> {
        let (part, key, slot_start) = self.place(start);
        let phone = self.phone_below(key)?;
        let (parent, record) = self
            .stack
            .last()
            .map_or((-1, -1), |f| (f.node as isize, f.record));
        self.tokens.push(Tok {
            kind,
            start,
            end,
            slot: (slot_start, end),
            parent,
            record,
            key,
            part,
            escaped,
            float,
            phone,
            site,
        });
        Ok(key)
    }

    fn member(&mut self, start: usize, end: usize, escaped: bool) -> PyResult<()> {
        let text = self.text(start, end, escaped)?;
        let key = self.key_id(&text)?;
        let site = self.facts[key as usize].site;
        let index = self.tokens.len();
        let frame = self
            .stack
            .last_mut()
            .expect("a key is only read inside an object");
        frame.member_start = start;
        frame.key_span = (start, end);
        frame.key = key;
        frame.key_token = index;
        let (node, record) = (frame.node as isize, frame.record);
        self.tokens.push(Tok {
            kind: TKind::Key,
            start,
            end,
            slot: (start, end), // its slot ends with the member's value: set by `done`
            parent: node,
            record,
            key: NONE,
            part: Part::None,
            escaped,
            float: false,
            phone: false,
            site,
        });
        self.expect = Expect::Value;
        Ok(())
    }

    /// The id of the member key `text` of the top frame: the guess when it is right, else
    /// `intern`'s (and the guess learns it).
    fn key_id(&mut self, text: &str) -> PyResult<u32> {
        let depth = self.stack.len();
        let prev = self.stack.last().map_or(NONE, |f| f.key);
        let guess = if prev == NONE {
            self.first_key.get(depth).copied().unwrap_or(NONE)
        } else {
            self.next_key[prev as usize]
        };
        if guess != NONE && same(self.keys[guess as usize].as_bytes(), text.as_bytes()) {
            return Ok(guess);
        }
        let key = self.intern(text)?;
        if prev != NONE {
            self.next_key[prev as usize] = key;
        } else {
            if self.first_key.len() <= depth {
                self.first_key.resize(depth + 1, NONE);
            }
            self.first_key[depth] = key;
        }
        Ok(key)
    }

    fn intern(&mut self, text: &str) -> PyResult<u32> {
        if let Some(&id) = self.key_ids.get(text) {
            return Ok(id);
        }
        let id = self.keys.len() as u32;
        let facts = self.learn(text)?;
        let site = could_hold(text);
        self.facts.push(Facts { site, ..facts });
        self.next_key.push(NONE);
        self.keys.push(text.to_owned());
        self.key_ids.insert(text.to_owned(), id);
        Ok(id)
    }

    /// What the rules say of a key: from the caller's cache, else asked and cached there.
    fn learn(&self, text: &str) -> PyResult<Facts> {
        let rules = self.rules;
        if let Some(&bits) = rules.facts.borrow().known.get(text) {
            return Ok(Facts::of(bits));
        }
        let key = PyString::new(self.py, text); // Python runs below: no borrow held
        let meta = rules.meta.contains(&key)?;
        let facts = Facts {
            meta,
            content: !meta && !rules.describes.call1((&key, ""))?.is_truthy()?,
            phone: rules.phone_key.call1((&key,))?.is_truthy()?,
            type_key: rules.type_keys.contains(&key)?,
            site: false,
        };
        let mut cache = rules.facts.borrow_mut();
        if cache.known.len() >= cache.limit {
            cache.known.clear();
        }
        cache.known.insert(text.into(), facts.bits());
        Ok(facts)
    }

    fn is_meta(&self, key: u32) -> bool {
        self.facts[key as usize].meta
    }

    fn is_phone_key(&self, key: u32) -> bool {
        self.facts[key as usize].phone
    }

    fn is_type_key(&self, key: u32) -> bool {
        self.facts[key as usize].type_key
    }

    fn is_phone_type(&mut self, text: &str) -> PyResult<bool> {
        if let Some(&known) = self.phone_types.get(text) {
            return Ok(known);
        }
        let known = self.rules.phone_type.call1((text,))?.is_truthy()?;
        self.phone_types.insert(text.to_owned(), known);
        Ok(known)
    }

    /// Is this member content (not a describing one) of its object? `describes` decides;
    /// a number describes when it is small (`contact.describes`), a string by its key alone.
    fn content(&self, key: u32, value: Described) -> bool {
        match value {
            Described::Literal => false,
            Described::Container => !self.is_meta(key),
            Described::Number(size) => !self.is_meta(key) && size >= SMALL,
            Described::Str => self.facts[key as usize].content,
        }
    }

    /// A value ended at `end`: close its member (objects) and expect what follows.
    ///
    /// A member that does not only describe (`rules.detect.contact.describes`) is content: an
    /// object whose content is one key is a contact point (`Scan.wrapper`).
    fn done(&mut self, end: usize, value: Described) -> PyResult<()> {
        let Some(frame) = self.stack.last_mut() else {
            self.expect = Expect::End;
            return Ok(());
        };
        self.expect = Expect::Next;
        frame.count += 1;
        if !frame.is_object {
            return Ok(());
        }
        let (key, same) = (frame.key, frame.sole == frame.key);
        self.tokens[frame.key_token].slot = (frame.member_start, end);
        if !same && self.content(key, value) {
            let frame = self.stack.last_mut().expect("checked above");
            frame.many = frame.many || frame.sole != NONE;
            frame.sole = key;
        }
        Ok(())
    }

    fn open(&mut self, start: usize) -> PyResult<()> {
        if self.stack.len() as i64 >= self.max_depth {
            return Err(self.error(format!("JSON nested deeper than {} levels", self.max_depth)));
        }
        let (part, key, slot_start) = self.place(start);
        let phone = self.phone_below(key)?;
        let is_object = self.body[start] == b'{';
        let node = self.nodes.len();
        self.nodes.push(None); // filled when it closes (`typed` may be set before)
        let record = match self.stack.last() {
            Some(parent) if is_object && !parent.is_object => node as isize,
            Some(parent) => parent.record,
            None => -1,
        };
        self.stack.push(Frame {
            node,
            is_object,
            start,
            slot_start,
            part,
            record,
            count: 0,
            member_start: 0,
            key: NONE,
            key_span: (0, 0),
            key_token: 0,
            sole: NONE,
            many: false,
            objects: 0,
            nested: false,
            phone,
            typed: false,
        });
        self.expect = if is_object {
            Expect::Member
        } else {
            Expect::Value
        };
        Ok(())
    }

    fn close(&mut self, start: usize, comma: bool) -> PyResult<()> {
        let frame = if comma { None } else { self.stack.pop() };
        let Some(frame) = frame else {
            return Err(self.invalid(start));
        };
        let opening = if frame.is_object {
            Expect::Member
        } else {
            Expect::Value
        };
        let empty = frame.count == 0 && self.expect == opening;
        if !(self.expect == Expect::Next || empty) || frame.is_object != (self.body[start] == b'}')
        {
            return Err(self.invalid(start));
        }
        let end = start + 1;
        let keyed = if frame.is_object && frame.count > 0 && frame.count == frame.objects {
            1 + u8::from(frame.nested)
        } else {
            0
        };
        if let Some(p) = self
            .stack
            .last_mut()
            .filter(|p| p.is_object && frame.is_object)
        {
            p.objects += 1;
            p.nested = p.nested || keyed > 0;
        }
        let parent = self.stack.last();
        let typed = frame.typed;
        self.nodes[frame.node] = Some(Nd {
            is_object: frame.is_object,
            start: frame.start,
            end,
            slot: parent.map(|_| (frame.slot_start, end)),
            parent: parent.map_or(-1, |p| p.node as isize),
            in_list: parent.is_some_and(|p| !p.is_object),
            record: parent.map_or(-1, |p| p.record),
            sole: if frame.many { NONE } else { frame.sole },
            keyed,
            part: frame.part,
            typed,
        });
        self.done(end, Described::Container)
    }
}

/// A member value as `describes` reads it: containers never describe, literals always do,
/// a number by its size, a string by its key alone.
#[derive(Clone, Copy)]
enum Described {
    Str,
    Number(f64),
    Container,
    Literal,
}
