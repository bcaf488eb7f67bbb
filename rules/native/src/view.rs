//! The decoded reading of a text (rules/detect/textview.py): HTML entities, percent and JSON escapes,
//! full-width forms and invisible characters decoded once, each decoded offset mapped back.

use crate::classes::{is, is_ignorable};
use crate::tables;
use crate::units::{at, Unit};

pub struct View {
    pub text: Vec<u32>,
    clean_starts: Vec<usize>,
    orig_starts: Vec<usize>,
    orig_ends: Vec<usize>,
    literal: Vec<bool>,
}

impl View {
    /// The original span of the decoded characters `text[start..end]` (end > start).
    pub fn span(&self, start: usize, end: usize) -> (usize, usize) {
        let first = self.clean_starts.partition_point(|&x| x <= start) - 1;
        let last = self.clean_starts.partition_point(|&x| x < end) - 1;
        let orig_start = if self.literal[first] {
            self.orig_starts[first] + start - self.clean_starts[first]
        } else {
            self.orig_starts[first]
        };
        let orig_end = if self.literal[last] {
            self.orig_starts[last] + end - self.clean_starts[last]
        } else {
            self.orig_ends[last]
        };
        (orig_start, orig_end)
    }

    fn add<U: Unit>(&mut self, piece: &[U], start: usize, end: usize, literal: bool) {
        if piece.is_empty() {
            return;
        }
        self.clean_starts.push(self.text.len());
        self.orig_starts.push(start);
        self.orig_ends.push(end);
        self.literal.push(literal);
        self.text.extend(piece.iter().map(|c| c.code()));
    }
}

/// The next place from `from` where a token may start: `%`, `&`, `\` or any non-ASCII
/// character (no token starts at another ASCII one).
fn next_token<U: Unit>(t: &[U], from: usize) -> usize {
    U::find(t, from, b"%&\\", |_| true)
}

/// The decoded view of `t`, or None when nothing in it is encoded.
pub fn decoded<U: Unit>(t: &[U]) -> Option<View> {
    let mut view: Option<View> = None;
    let mut position = 0;
    let mut p = 0;
    let mut piece = Vec::new();
    loop {
        p = next_token(t, p);
        if p >= t.len() {
            break;
        }
        let end = token_end(t, p);
        if end == 0 {
            p += 1;
            continue;
        }
        let v = view.get_or_insert_with(|| View {
            text: Vec::with_capacity(t.len()),
            clean_starts: Vec::new(),
            orig_starts: Vec::new(),
            orig_ends: Vec::new(),
            literal: Vec::new(),
        });
        v.add(&t[position..p], position, p, true);
        piece.clear();
        decode_token(&t[p..end], &mut piece);
        v.add(&piece, p, end, false);
        position = end;
        p = end;
    }
    if let Some(v) = view.as_mut() {
        v.add(&t[position..], position, t.len(), true);
    }
    view
}

fn is_hex(c: u32) -> bool {
    c < 0x80 && (c as u8).is_ascii_hexdigit()
}

fn is_digit(c: u32) -> bool {
    c < 0x80 && (c as u8).is_ascii_digit()
}

fn is_letter(c: u32) -> bool {
    c < 0x80 && (c as u8).is_ascii_alphabetic()
}

fn is_letter_digit(c: u32) -> bool {
    c < 0x80 && (c as u8).is_ascii_alphanumeric()
}

/// `from` plus the run of `class` characters after it, at most `max` (0 if fewer than `min`).
fn run<U: Unit>(
    t: &[U],
    from: usize,
    min: usize,
    max: usize,
    class: fn(u32) -> bool,
) -> Option<usize> {
    let mut end = from;
    while end < t.len() && end - from < max && class(t[end].code()) {
        end += 1;
    }
    (end - from >= min).then_some(end)
}

fn semicolon<U: Unit>(t: &[U], end: usize) -> usize {
    if is(at(t, end), b';') {
        end + 1
    } else {
        end
    }
}

/// The end of the token of textview's `_TOKEN` starting at `p`, or 0 when none starts there.
fn token_end<U: Unit>(t: &[U], p: usize) -> usize {
    let c = t[p].code();
    match c {
        0x26 => entity_end(t, p),
        0x25 => {
            let mut end = p;
            while is(at(t, end), b'%') && is_hex(at(t, end + 1)) && is_hex(at(t, end + 2)) {
                end += 3;
            }
            if end > p {
                end
            } else {
                0
            }
        }
        0x5C => {
            let next = at(t, p + 1);
            if is(next, b'u') && run(t, p + 2, 4, 4, is_hex).is_some() {
                p + 6
            } else if next < 0x80 && b"\"\\/bfnrt".contains(&(next as u8)) {
                p + 2
            } else {
                0
            }
        }
        0xFF01..=0xFF5E | 0xFE6B | 0xFF61 => p + 1,
        _ if compat(c).is_some() => p + 1,
        _ if is_ignorable(c) => {
            let mut end = p;
            while end < t.len() && is_ignorable(t[end].code()) {
                end += 1;
            }
            end
        }
        _ => 0,
    }
}

fn entity_end<U: Unit>(t: &[U], p: usize) -> usize {
    if is(at(t, p + 1), b'#') {
        if let Some(end) = run(t, p + 2, 1, 7, is_digit) {
            return semicolon(t, end);
        }
        let x = at(t, p + 2);
        if is(x, b'x') || is(x, b'X') {
            if let Some(end) = run(t, p + 3, 1, 6, is_hex) {
                return semicolon(t, end);
            }
        }
        return 0;
    }
    if is_letter(at(t, p + 1)) {
        if let Some(end) = run(t, p + 2, 1, 31, is_letter_digit) {
            return semicolon(t, end);
        }
    }
    0
}

fn push_str(out: &mut Vec<u32>, s: &str) {
    out.extend(s.chars().map(|c| c as u32));
}

/// What a client reads for one token (textview.decode_token). What an escape decodes to is
/// read once more for full-width forms and invisible characters (`&#xff20;` is an `@`).
fn decode_token<U: Unit>(token: &[U], out: &mut Vec<u32>) {
    let from = out.len();
    decode_escape(token, out);
    let first = token[0].code();
    if matches!(first, 0x26 | 0x25) || (first == 0x5C && is(token[1].code(), b'u')) {
        fold(out, from);
    }
}

/// `out[from..]` with each full-width form, small `@` and halfwidth stop read as what it
/// shows and each invisible character dropped (textview._folded: one pass, not repeated).
fn fold(out: &mut Vec<u32>, from: usize) {
    let decoded = out.split_off(from);
    for c in decoded {
        match c {
            0xFF61 => out.push(0x2E),
            0xFF01..=0xFF5E => out.push(c - 0xFEE0),
            0xFE6B => out.push(0x40),
            _ if is_ignorable(c) => {}
            _ => match compat(c) {
                Some(shown) => push_str(out, shown),
                None => out.push(c),
            },
        }
    }
}

/// What a compatibility form (`①`, `¹`, `․`) reads as (textview.COMPAT), if it is one.
fn compat(c: u32) -> Option<&'static str> {
    tables::COMPAT
        .binary_search_by_key(&c, |&(k, _)| k)
        .ok()
        .map(|i| tables::COMPAT[i].1)
}

fn decode_escape<U: Unit>(token: &[U], out: &mut Vec<u32>) {
    let first = token[0].code();
    match first {
        0x26 => unescape(token, out),
        0x25 => {
            let bytes: Vec<u8> = token
                .chunks(3)
                .map(|h| (hex_value(h[1].code()) * 16 + hex_value(h[2].code())) as u8)
                .collect();
            push_str(out, &String::from_utf8_lossy(&bytes));
        }
        0x5C => {
            let c = token[1].code();
            if is(c, b'u') {
                out.push(
                    token[2..6]
                        .iter()
                        .fold(0, |n, h| n * 16 + hex_value(h.code())),
                );
            } else {
                out.push(match c as u8 {
                    b'b' => 0x08,
                    b'f' => 0x0C,
                    b'n' => 0x0A,
                    b'r' => 0x0D,
                    b't' => 0x09,
                    _ => c,
                });
            }
        }
        0xFF61 => out.push(0x2E),
        0xFF01..=0xFF5E => out.push(first - 0xFEE0),
        0xFE6B => out.push(0x40),
        _ => {
            if let Some(shown) = compat(first) {
                push_str(out, shown);
            }
        }
    }
}

fn hex_value(c: u32) -> u32 {
    char::from_u32(c).and_then(|c| c.to_digit(16)).unwrap_or(0)
}

/// `html.unescape` of one entity token (`&#64;`, `&#x40;`, `&commat;`, `&notit;`).
fn unescape<U: Unit>(token: &[U], out: &mut Vec<u32>) {
    let name: String = token[1..].iter().map(|c| c.code() as u8 as char).collect();
    if let Some(number) = name.strip_prefix('#') {
        let digits = number.trim_end_matches(';');
        let num = match digits.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16),
            None => digits.parse::<u32>(),
        }
        .unwrap_or(0);
        if let Ok(i) = tables::INVALID_CHARREFS.binary_search_by_key(&num, |&(k, _)| k) {
            push_str(out, tables::INVALID_CHARREFS[i].1);
        } else if (0xD800..=0xDFFF).contains(&num) || num > 0x10FFFF {
            out.push(0xFFFD);
        } else if tables::INVALID_CODEPOINTS.binary_search(&num).is_err() {
            out.push(num);
        }
        return;
    }
    if let Some(value) = html5(&name) {
        push_str(out, value);
        return;
    }
    for x in (2..name.len()).rev() {
        if let Some(value) = html5(&name[..x]) {
            push_str(out, value);
            push_str(out, &name[x..]);
            return;
        }
    }
    out.push(0x26);
    push_str(out, &name);
}

fn html5(name: &str) -> Option<&'static str> {
    tables::HTML5
        .binary_search_by(|&(k, _)| k.cmp(name))
        .ok()
        .map(|i| tables::HTML5[i].1)
}
