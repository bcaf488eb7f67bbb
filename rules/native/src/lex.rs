//! The JSON lexer of `json_scan`: the reference's regex (rules/detect/jsonspan.py) by hand.

/// One token of the reference's regex: the comma before it is read by the caller.
pub enum Lexeme {
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

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

pub fn skip_ws(body: &[u8], mut i: usize) -> usize {
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

/// The bytes a string holds as they are: not a quote, a backslash or a control character.
const PLAIN: [bool; 256] = {
    let mut table = [true; 256];
    let mut c = 0;
    while c < 0x20 {
        table[c] = false;
        c += 1;
    }
    table[b'"' as usize] = false;
    table[b'\\' as usize] = false;
    table
};

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// How many bytes from `i` hold as they are (`PLAIN`). Eight at a time as one u64 ("SWAR"):
/// a lane's high bit is set where it is a quote, a backslash or below 0x20, and the lowest
/// set lane is exact (borrows only run upwards), so a string costs a few steps, not one a byte.
fn plain_run(body: &[u8], i: usize) -> usize {
    let mut n = 0;
    while let Some(lanes) = body.get(i + n..i + n + 8) {
        let x = u64::from_le_bytes(lanes.try_into().expect("eight bytes"));
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        let stop = (quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(ONES * 0x20) & !x);
        let stop = stop & HIGHS;
        if stop != 0 {
            return n + (stop.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    let rest = body.get(i + n..).unwrap_or_default();
    n + rest.iter().take_while(|&&c| PLAIN[c as usize]).count()
}

/// The end of the string starting at `start` (a quote) by the reference's string regex, and
/// whether it holds an escape; None where the regex does not match.
fn string_end(body: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut i = start + 1;
    let mut escaped = false;
    loop {
        // The common bytes in one tight loop; the match below sees only the others.
        i += plain_run(body, i);
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
pub fn lex(body: &[u8], pos: usize) -> Lexeme {
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
        first => {
            // The one literal its first byte allows (a compare, no memcmp call per word).
            let word: &[u8] = match first {
                b't' => b"true",
                b'f' => b"false",
                b'n' => b"null",
                _ => return Lexeme::Bad,
            };
            match body.get(pos..pos + word.len()) {
                Some(text) if text == word => Lexeme::Literal {
                    end: pos + word.len(),
                },
                _ => Lexeme::Bad,
            }
        }
    }
}

/// The value of a JSON string's inside (valid UTF-8, escapes checked by `string_end`), as
/// `json.loads` decodes it; None for a lone surrogate (the reference cannot encode it).
pub fn unescape(raw: &str) -> Option<String> {
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
