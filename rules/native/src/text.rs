//! UTF-8 bytes to code points, as Python's `decode("utf-8", "surrogateescape")` does: each
//! byte of an invalid sequence becomes one lone surrogate U+DC80..U+DCFF.

use crate::units::Unit;

pub struct Decoded {
    pub chars: Vec<u32>,
    /// `(i, extra)`: from character `i` on, byte offsets run `extra` ahead of character
    /// offsets (the bytes past the first of each multi-byte character before `i`). One entry
    /// per multi-byte character, so a mostly ASCII body keeps no offset per character.
    shifts: Vec<(usize, usize)>,
}

impl Decoded {
    /// The byte offset of character `i` (`i` may be the length).
    pub fn byte(&self, i: usize) -> usize {
        let n = self.shifts.partition_point(|&(from, _)| from <= i);
        i + if n == 0 { 0 } else { self.shifts[n - 1].1 }
    }

    /// Appends valid UTF-8: ASCII runs copied as they are, each other character noted.
    fn push_str(&mut self, s: &str) {
        let mut rest = s;
        while !rest.is_empty() {
            let ascii = rest.bytes().position(|b| b >= 0x80).unwrap_or(rest.len());
            self.chars
                .extend(rest.as_bytes()[..ascii].iter().map(|&b| u32::from(b)));
            rest = &rest[ascii..];
            if let Some(c) = rest.chars().next() {
                self.chars.push(c as u32);
                let extra = self.shifts.last().map_or(0, |&(_, e)| e) + c.len_utf8() - 1;
                self.shifts.push((self.chars.len(), extra));
                rest = &rest[c.len_utf8()..];
            }
        }
    }
}

pub fn decode(data: &[u8]) -> Decoded {
    let mut decoded = Decoded {
        chars: Vec::with_capacity(data.len()),
        shifts: Vec::new(),
    };
    let mut pos = 0;
    while pos < data.len() {
        let (valid, bad) = match std::str::from_utf8(&data[pos..]) {
            Ok(s) => (s, 0),
            Err(e) => {
                let good = e.valid_up_to();
                let bad = e.error_len().unwrap_or(data.len() - pos - good);
                // SAFETY-free: the prefix up to valid_up_to is valid UTF-8.
                let s = std::str::from_utf8(&data[pos..pos + good]).unwrap_or_default();
                (s, bad)
            }
        };
        decoded.push_str(valid);
        pos += valid.len();
        // Each undecodable byte is one character of one byte: no shift.
        let escaped = data[pos..pos + bad].iter().map(|&b| 0xDC00 + u32::from(b));
        decoded.chars.extend(escaped);
        pos += bad;
    }
    decoded
}

/// A candidate's text: never holds a surrogate (no finder expands over one), so lossless.
pub fn to_string<U: Unit>(chars: &[U]) -> String {
    chars
        .iter()
        .map(|c| char::from_u32(c.code()).unwrap_or('\u{FFFD}'))
        .collect()
}
