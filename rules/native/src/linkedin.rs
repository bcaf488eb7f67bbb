//! LinkedIn URL candidates (textfind._linkedins): every `linkedin.com` host with a path, as
//! written and cut at trailing marks. Regex searches of the reference are spelled out here,
//! including `re`'s case folding (`K` matches U+212A) and `$` matching before a final `\n`.

use crate::classes::{is, is_alnum, is_ascii_in};

const MAX_PATH: usize = 512;
const MAX_SPLITS: usize = 16;
const PATH_STOP: &[u8] = b" \t\r\n\"'<>`\\{}|^[]";
const TRAILING: &[u8] = b".,;:!?)]}'\"*";
const HOST: &[u8] = b"linkedin.com";

/// `re.IGNORECASE` equality of one character with a lower-case ASCII pattern character; a
/// `.` also matches U+3002 (`linkedin[.\u3002]com`, the only pattern with a dot).
fn folds_to(c: u32, p: u8) -> bool {
    if c < 0x80 {
        return (c as u8).to_ascii_lowercase() == p;
    }
    matches!(
        (p, c),
        (b'i', 0x130) | (b'i', 0x131) | (b'k', 0x212A) | (b's', 0x17F) | (b'.', 0x3002)
    )
}

fn matches_at(t: &[u32], p: usize, pattern: &[u8]) -> bool {
    p + pattern.len() <= t.len() && pattern.iter().zip(&t[p..]).all(|(&b, &c)| folds_to(c, b))
}

pub fn linkedins(t: &[u32], out: &mut Vec<(usize, usize)>) {
    let mut p = 0;
    while p + HOST.len() <= t.len() {
        if t[p] | 0x20 != b'l' as u32 || !matches_at(t, p, HOST) {
            p += 1;
            continue;
        }
        let host = p;
        p += HOST.len();
        let start = url_start(t, host);
        let glued = start > 0 && (is_alnum(t[start - 1]) || is_ascii_in(t[start - 1], b"-_."));
        if glued && !has_slashes(&t[start..host]) {
            continue; // `notlinkedin.com`: another host (`xhttps://linkedin.com` is not)
        }
        let mut end = p;
        if end < t.len() && is(t[end], b'.') {
            end += 1; // `linkedin.com./in/…`: the root label, same host
        }
        if end < t.len() && is(t[end], b':') {
            let mut q = end + 1;
            while q < t.len() && q - end - 1 < 5 && t[q] < 0x80 && (t[q] as u8).is_ascii_digit() {
                q += 1;
            }
            if q > end + 1 {
                end = q;
            }
        }
        if end >= t.len() || !is(t[end], b'/') {
            continue;
        }
        for stop in path_ends(t, end) {
            out.push((start, stop));
        }
    }
}

/// Whether `//` occurs in `t` (a scheme written before the host).
fn has_slashes(t: &[u32]) -> bool {
    t.windows(2).any(|w| is(w[0], b'/') && is(w[1], b'/'))
}

/// Where `$` of a search in `t[lo..hi]` may match: the end, or before a final newline.
fn dollar(t: &[u32], lo: usize, hi: usize) -> usize {
    if hi > lo && is(t[hi - 1], b'\n') {
        hi - 1
    } else {
        hi
    }
}

fn is_label(c: u32) -> bool {
    c < 0x80 && ((c as u8).is_ascii_alphanumeric() || c == b'-' as u32)
}

fn url_start(t: &[u32], host: usize) -> usize {
    let lo = host.saturating_sub(64);
    let target = dollar(t, lo, host);
    let mut i = target;
    for _ in 0..4 {
        if i == lo || !is(t[i - 1], b'.') {
            break;
        }
        let dot = i - 1;
        let mut j = dot;
        while j > lo && dot - j < 63 && is_label(t[j - 1]) {
            j -= 1;
        }
        if j == dot {
            break;
        }
        i = j;
    }
    let start = host - (target - i);
    let lo = start.saturating_sub(8);
    let target = dollar(t, lo, start);
    for scheme in [&b"https://"[..], b"http://", b"//"] {
        if target >= lo + scheme.len() && matches_at(t, target - scheme.len(), scheme) {
            return start - scheme.len();
        }
    }
    start
}

fn is_path(c: u32) -> bool {
    if c < 0x80 {
        (0x20..0x7F).contains(&c) && !PATH_STOP.contains(&(c as u8))
    } else {
        is_alnum(c)
    }
}

fn path_ends(t: &[u32], slash: usize) -> Vec<usize> {
    let mut end = slash;
    let limit = t.len().min(slash + MAX_PATH);
    while end < limit && is_path(t[end]) {
        end += 1;
    }
    let mut ends = vec![end];
    let mut trimmed = end;
    while trimmed > slash + 1 && is_ascii_in(t[trimmed - 1], TRAILING) {
        trimmed -= 1;
    }
    ends.push(trimmed);
    for (k, &c) in t.iter().enumerate().take(end).skip(slash + 1) {
        if !(is_alnum(c) || is_ascii_in(c, b"-_%")) && ends.len() < MAX_SPLITS {
            ends.push(k);
        }
    }
    let mut unique = Vec::with_capacity(ends.len());
    for e in ends {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    unique
}
