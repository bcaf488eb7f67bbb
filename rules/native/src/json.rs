//! `json_scan`: the structural pass of `rules/detect/jsonspan.py` over the raw bytes of a JSON body.
//!
//! The same grammar, the same state machine and the same results as the reference
//! (`jsonspan.scan`): every string value, object key and number becomes a `Token`, every
//! container a `Node`, built here as the reference's own NamedTuples (classes handed in by
//! rules/detect/finder.py), so the Python side only wraps them in a `Scan`. Every input the reference
//! rejects raises its `JsonBodyError`: invalid JSON, invalid UTF-8 inside a string, lone
//! surrogate escapes, nesting deeper than `max_depth`, ints longer than Python converts.

use std::borrow::Cow;
use std::collections::HashMap;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyFloat, PyString, PyTuple, PyType};

/// What the grammar expects next (the reference's `_VALUE, _MEMBER, _NEXT, _END`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Value,
    Member,
    Next,
    End,
}

/// One token of the reference's regex: the comma before it is read by the caller.
enum Lexeme {
    Str {
        end: usize,
        escaped: bool,
    },
    Key {
        end: usize,
        escaped: bool,
        next: usize,
    },
    Num {
        end: usize,
        float: bool,
    },
    Open,
    Close,
    Literal {
        end: usize,
    },
    Bad,
}

/// The Python objects results are made of: `(Token, Node, Kind.STRING, Kind.KEY,
/// Kind.NUMBER, describes, JsonBodyError)` from rules/detect/finder.py, plus two builtins.
struct Context<'py> {
    token: Bound<'py, PyAny>,
    node: Bound<'py, PyAny>,
    string: Bound<'py, PyAny>,
    key: Bound<'py, PyAny>,
    number: Bound<'py, PyAny>,
    describes: Bound<'py, PyAny>,
    error: Bound<'py, PyType>,
    tuple_new: Bound<'py, PyAny>,
    int: Bound<'py, PyAny>,
}

impl<'py> Context<'py> {
    fn new(py: Python<'py>, context: &Bound<'py, PyTuple>) -> PyResult<Self> {
        Ok(Self {
            token: context.get_item(0)?,
            node: context.get_item(1)?,
            string: context.get_item(2)?,
            key: context.get_item(3)?,
            number: context.get_item(4)?,
            describes: context.get_item(5)?,
            error: context.get_item(6)?.downcast_into::<PyType>()?,
            tuple_new: py.get_type::<PyTuple>().getattr("__new__")?,
            int: py.get_type::<pyo3::types::PyInt>().into_any(),
        })
    }

    /// An instance of a NamedTuple class, as `tuple.__new__(cls, fields)` (no Python frame).
    fn make(
        &self,
        cls: &Bound<'py, PyAny>,
        fields: Bound<'py, PyTuple>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.tuple_new.call1((cls, fields))
    }
}

/// A member value as `describes` reads it: containers never describe, literals always do,
/// a string does by its key alone (so its answer is kept per key for the scan).
enum Described<'a, 'py> {
    Str(&'a Bound<'py, PyAny>),
    Number(&'a Bound<'py, PyAny>),
    Container,
    Literal,
}

/// An open container (the reference's `_Frame`).
struct Frame<'a, 'py> {
    node: usize,
    is_object: bool,
    start: usize,
    slot_start: usize,
    path: Bound<'py, PyTuple>,
    record: isize,
    count: usize,
    member_start: usize,
    key: Option<(Cow<'a, str>, Bound<'py, PyString>)>,
    key_span: (usize, usize),
    key_token: usize,
    sole: Option<(Cow<'a, str>, Bound<'py, PyString>)>,
    many: bool,
}

struct Scanner<'a, 'py> {
    py: Python<'py>,
    body: &'a [u8],
    meta: &'a Bound<'py, PyAny>,
    max_depth: i64,
    ctx: Context<'py>,
    stack: Vec<Frame<'a, 'py>>,
    tokens: Vec<Option<Bound<'py, PyAny>>>,
    nodes: Vec<Option<Bound<'py, PyAny>>>,
    expect: Expect,
    meta_keys: HashMap<String, bool>,
    string_content: HashMap<String, bool>,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_ws(body: &[u8], mut i: usize) -> usize {
    while i < body.len() && is_ws(body[i]) {
        i += 1;
    }
    i
}

fn digits(body: &[u8], mut i: usize) -> usize {
    while body.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// The end of the string starting at `start` (a quote) by the reference's string regex, and
/// whether it holds an escape; None where the regex does not match.
fn string_end(body: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut i = start + 1;
    let mut escaped = false;
    loop {
        match *body.get(i)? {
            b'"' => return Some((i + 1, escaped)),
            b'\\' => {
                escaped = true;
                match *body.get(i + 1)? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                    b'u' if body.get(i + 2..i + 6)?.iter().all(u8::is_ascii_hexdigit) => i += 6,
                    _ => return None,
                }
            }
            c if c < 0x20 => return None,
            _ => i += 1,
        }
    }
}

/// `-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` from `start`: its end and whether it
/// has a fraction or exponent (a float); None where it does not match.
fn number_end(body: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut i = start + usize::from(body[start] == b'-');
    match *body.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(body, i + 1),
        _ => return None,
    }
    let mut float = false;
    if body.get(i) == Some(&b'.') && body.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i = digits(body, i + 1);
        float = true;
    }
    if matches!(body.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(body.get(i + 1), Some(b'+' | b'-')));
        if body.get(i + 1 + sign).is_some_and(u8::is_ascii_digit) {
            i = digits(body, i + 1 + sign);
            float = true;
        }
    }
    Some((i, float))
}

/// The token at `pos` (not whitespace, not the comma before it).
fn lex(body: &[u8], pos: usize) -> Lexeme {
    match body[pos] {
        b'"' => match string_end(body, pos) {
            Some((end, escaped)) => {
                let after = skip_ws(body, end);
                if body.get(after) == Some(&b':') {
                    Lexeme::Key {
                        end,
                        escaped,
                        next: after + 1,
                    }
                } else {
                    Lexeme::Str { end, escaped }
                }
            }
            None => Lexeme::Bad,
        },
        b'-' | b'0'..=b'9' => match number_end(body, pos) {
            Some((end, float)) => Lexeme::Num { end, float },
            None => Lexeme::Bad,
        },
        b'[' | b'{' => Lexeme::Open,
        b']' | b'}' => Lexeme::Close,
        _ => {
            let rest = &body[pos..];
            for word in [&b"true"[..], b"false", b"null"] {
                if rest.starts_with(word) {
                    return Lexeme::Literal {
                        end: pos + word.len(),
                    };
                }
            }
            Lexeme::Bad
        }
    }
}

/// The value of a JSON string's inside (valid UTF-8, escapes checked by `string_end`), as
/// `json.loads` decodes it; None for a lone surrogate (the reference cannot encode it).
fn unescape(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut out = String::with_capacity(raw.len());
    let (mut i, mut literal) = (0, 0);
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&raw[literal..i]);
        let code = b[i + 1];
        i += 2;
        out.push(match code {
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let (ch, used) = escaped_char(&raw[i..])?;
                i += used;
                ch
            }
            other => char::from(other),
        });
        literal = i;
    }
    out.push_str(&raw[literal..]);
    Some(out)
}

/// The character of `XXXX` (after `\u`), joined with a following `\uXXXX` low surrogate;
/// its length in bytes. None: a lone surrogate.
fn escaped_char(rest: &str) -> Option<(char, usize)> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let high = hex(&rest[..4])?;
    if !(0xD800..0xDC00).contains(&high) {
        return char::from_u32(high).map(|c| (c, 4));
    }
    if rest.as_bytes().get(4..6) != Some(b"\\u") {
        return None;
    }
    let low = hex(&rest[6..10])?;
    if !(0xDC00..0xE000).contains(&low) {
        return None;
    }
    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)).map(|c| (c, 10))
}

impl<'a, 'py> Scanner<'a, 'py> {
    fn error(&self, message: String) -> PyErr {
        PyErr::from_type(self.ctx.error.clone(), message)
    }

    fn invalid(&self, at: usize) -> PyErr {
        self.error(format!("invalid JSON at byte {at}"))
    }

    fn run(&mut self) -> PyResult<()> {
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
                return if comma { Err(self.invalid(at)) } else { Ok(()) };
            }
            pos = self.step(pos, comma)?;
        }
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
                let value = self.text(pos, end, escaped)?.1.into_any();
                self.scalar(&self.ctx.string.clone(), pos, end, value)?;
                Ok(end)
            }
            Lexeme::Num { end, float } => {
                let value = self.number(pos, end, float)?;
                self.scalar(&self.ctx.number.clone(), pos, end, value)?;
                Ok(end)
            }
            Lexeme::Open => {
                self.open(pos)?;
                Ok(pos + 1)
            }
            Lexeme::Literal { end } => {
                self.place(pos)?;
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

    /// A string's decoded value, as text and as a Python str.
    fn text(
        &self,
        start: usize,
        end: usize,
        escaped: bool,
    ) -> PyResult<(Cow<'a, str>, Bound<'py, PyString>)> {
        let body: &'a [u8] = self.body;
        let decoded = std::str::from_utf8(&body[start + 1..end - 1])
            .ok()
            .and_then(|raw| {
                if escaped {
                    unescape(raw).map(Cow::Owned)
                } else {
                    Some(Cow::Borrowed(raw))
                }
            });
        match decoded {
            Some(text) => {
                let value = PyString::new(self.py, &text);
                Ok((text, value))
            }
            None => Err(self.error(format!("invalid string at byte {start}"))),
        }
    }

    fn number(&self, start: usize, end: usize, float: bool) -> PyResult<Bound<'py, PyAny>> {
        let text = std::str::from_utf8(&self.body[start..end]).map_err(|_| self.invalid(start))?;
        if float {
            let value: f64 = text.parse().map_err(|_| self.invalid(start))?;
            return Ok(PyFloat::new(self.py, value).into_any());
        }
        if text.len() <= 18 {
            if let Ok(value) = text.parse::<i64>() {
                return Ok(value.into_pyobject(self.py)?.into_any());
            }
        }
        // Python's own int(): more digits than it converts is the reference's error too.
        self.ctx
            .int
            .call1((text,))
            .map_err(|_| self.error(format!("number too long at byte {start}")))
    }

    /// Path, member key and slot start of a value that starts at `start`.
    fn place(
        &mut self,
        start: usize,
    ) -> PyResult<(Bound<'py, PyTuple>, Option<Bound<'py, PyString>>, usize)> {
        let py = self.py;
        let Some(frame) = self.stack.last_mut() else {
            return Ok((PyTuple::empty(py), None, start));
        };
        if frame.is_object {
            let key = frame.key.as_ref().map(|(_, k)| k.clone());
            let path = extend(&frame.path, key.clone().into_pyobject(py)?.into_any())?;
            return Ok((path, key, frame.member_start));
        }
        frame.member_start = start;
        let path = extend(&frame.path, frame.count.into_pyobject(py)?.into_any())?;
        Ok((path, None, start))
    }

    fn scalar(
        &mut self,
        kind: &Bound<'py, PyAny>,
        start: usize,
        end: usize,
        value: Bound<'py, PyAny>,
    ) -> PyResult<()> {
        let is_str = kind.is(&self.ctx.string);
        let (path, key, slot_start) = self.place(start)?;
        let (parent, record) = self
            .stack
            .last()
            .map_or((-1, -1), |f| (f.node as isize, f.record));
        let fields = (
            kind,
            start,
            end,
            &value,
            key,
            path,
            (slot_start, end),
            parent,
            record,
        );
        let token = self
            .ctx
            .make(&self.ctx.token, fields.into_pyobject(self.py)?)?;
        self.tokens.push(Some(token));
        self.done(
            end,
            if is_str {
                Described::Str(&value)
            } else {
                Described::Number(&value)
            },
        )
    }

    fn member(&mut self, start: usize, end: usize, escaped: bool) -> PyResult<()> {
        let key = self.text(start, end, escaped)?;
        let index = self.tokens.len();
        let frame = self
            .stack
            .last_mut()
            .expect("a key is only read inside an object");
        frame.member_start = start;
        frame.key_span = (start, end);
        frame.key = Some(key);
        frame.key_token = index;
        self.tokens.push(None); // filled when the member ends: its slot needs the value's end
        self.expect = Expect::Value;
        Ok(())
    }

    /// Is `key` one of the meta keys (asked once per key and scan)?
    fn is_meta(&mut self, text: &str, key: &Bound<'py, PyString>) -> PyResult<bool> {
        if let Some(&known) = self.meta_keys.get(text) {
            return Ok(known);
        }
        let known = self.meta.contains(key)?;
        self.meta_keys.insert(text.to_owned(), known);
        Ok(known)
    }

    /// Is this member content (not a describing one) of its object? `describes` decides.
    fn content(
        &mut self,
        text: &str,
        key: &Bound<'py, PyString>,
        value: &Described<'_, 'py>,
    ) -> PyResult<bool> {
        let content = match value {
            Described::Literal => false,
            Described::Container => !self.is_meta(text, key)?,
            Described::Number(v) => {
                !self.is_meta(text, key)? && !self.ctx.describes.call1((key, *v))?.is_truthy()?
            }
            Described::Str(v) => {
                if let Some(&known) = self.string_content.get(text) {
                    return Ok(known);
                }
                let known = !self.is_meta(text, key)?
                    && !self.ctx.describes.call1((key, *v))?.is_truthy()?;
                self.string_content.insert(text.to_owned(), known);
                known
            }
        };
        Ok(content)
    }

    /// A value ended at `end`: close its member (objects) and expect what follows.
    ///
    /// A member that does not only describe (`rules.detect.contact.describes`) is content: an
    /// object whose content is one key is a contact point (`Scan.wrapper`).
    fn done(&mut self, end: usize, value: Described<'_, 'py>) -> PyResult<()> {
        let Some(frame) = self.stack.last() else {
            self.expect = Expect::End;
            return Ok(());
        };
        self.expect = Expect::Next;
        if !frame.is_object {
            if let Some(frame) = self.stack.last_mut() {
                frame.count += 1;
            }
            return Ok(());
        }
        let (text, key) = frame.key.clone().expect("a member has a key");
        let same = frame.sole.as_ref().is_some_and(|(sole, _)| *sole == text);
        let (start, stop) = frame.key_span;
        let slot = (frame.member_start, end);
        let fields = (
            &self.ctx.key,
            start,
            stop,
            &key,
            self.py.None(),
            &frame.path,
            slot,
            frame.node,
            frame.record,
        );
        let index = frame.key_token;
        let token = self
            .ctx
            .make(&self.ctx.token, fields.into_pyobject(self.py)?)?;
        self.tokens[index] = Some(token);
        let content = !same && self.content(&text, &key, &value)?;
        let frame = self.stack.last_mut().expect("checked above");
        frame.count += 1;
        if content {
            frame.many = frame.many || frame.sole.is_some();
            frame.sole = Some((text, key));
        }
        Ok(())
    }

    fn open(&mut self, start: usize) -> PyResult<()> {
        if self.stack.len() as i64 >= self.max_depth {
            return Err(self.error(format!("JSON nested deeper than {} levels", self.max_depth)));
        }
        let (path, _, slot_start) = self.place(start)?;
        let is_object = self.body[start] == b'{';
        let node = self.nodes.len();
        self.nodes.push(None); // filled when it closes
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
            path,
            record,
            count: 0,
            member_start: 0,
            key: None,
            key_span: (0, 0),
            key_token: 0,
            sole: None,
            many: false,
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
        let parent = self.stack.last();
        let slot = parent.map(|_| (frame.slot_start, end));
        let sole = if frame.many {
            None
        } else {
            frame.sole.map(|(_, k)| k)
        };
        let fields = (
            frame.is_object,
            frame.start,
            end,
            slot,
            parent.map_or(-1, |p| p.node as isize),
            parent.is_some_and(|p| !p.is_object),
            parent.map_or(-1, |p| p.record),
            sole,
        );
        self.nodes[frame.node] = Some(
            self.ctx
                .make(&self.ctx.node, fields.into_pyobject(self.py)?)?,
        );
        self.done(end, Described::Container)
    }
}

/// `path + (part,)`.
fn extend<'py>(
    path: &Bound<'py, PyTuple>,
    part: Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyTuple>> {
    let parts: Vec<Bound<'py, PyAny>> = path.iter().chain(std::iter::once(part)).collect();
    PyTuple::new(path.py(), parts)
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
) -> PyResult<Bound<'py, PyTuple>> {
    let mut scanner = Scanner {
        py,
        body: body.as_bytes(),
        meta: meta_keys,
        max_depth,
        ctx: Context::new(py, context)?,
        stack: Vec::new(),
        tokens: Vec::new(),
        nodes: Vec::new(),
        expect: Expect::Value,
        meta_keys: HashMap::new(),
        string_content: HashMap::new(),
    };
    scanner.run()?;
    if scanner.expect != Expect::End {
        return Err(scanner.error("truncated or empty JSON".to_owned()));
    }
    let tokens = PyTuple::new(py, scanner.tokens.into_iter().flatten().collect::<Vec<_>>())?;
    let nodes = PyTuple::new(py, scanner.nodes.into_iter().flatten().collect::<Vec<_>>())?;
    PyTuple::new(py, [tokens, nodes])
}
