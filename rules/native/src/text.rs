//! UTF-8 bytes to code points, as Python's `decode("utf-8", "surrogateescape")` does: each
//! byte of an invalid sequence becomes one lone surrogate U+DC80..U+DCFF.

use crate::units::Unit;

pub struct Decoded {
    pub chars: Vec<u32>,
    /// Byte offset of each character, plus the total length at the end (None: ASCII, where
    /// character and byte offsets are the same).
    offsets: Option<Vec<usize>>,
}

impl Decoded {
    /// The byte offset of character `i`.
    pub fn byte(&self, i: usize) -> usize {
        self.offsets.as_ref().map_or(i, |o| o[i])
    }
}

pub fn decode(data: &[u8]) -> Decoded {
    if data.is_ascii() {
        let chars = data.iter().map(|&b| b as u32).collect();
        return Decoded {
            chars,
            offsets: None,
        };
    }
    let mut chars = Vec::with_capacity(data.len());
    let mut offsets = Vec::with_capacity(data.len() + 1);
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
        for (i, c) in valid.char_indices() {
            chars.push(c as u32);
            offsets.push(pos + i);
        }
        pos += valid.len();
        for k in 0..bad {
            chars.push(0xDC00 + data[pos + k] as u32);
            offsets.push(pos + k);
        }
        pos += bad;
    }
    offsets.push(data.len());
    Decoded {
        chars,
        offsets: Some(offsets),
    }
}

/// A candidate's text: never holds a surrogate (no finder expands over one), so lossless.
pub fn to_string<U: Unit>(chars: &[U]) -> String {
    chars
        .iter()
        .map(|c| char::from_u32(c.code()).unwrap_or('\u{FFFD}'))
        .collect()
}
