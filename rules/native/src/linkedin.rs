//! LinkedIn URL candidates (textfind._linkedins): every `linkedin.com` host with a path, as
//! written and cut at trailing marks. Regex searches of the reference are spelled out here,
//! including `re`'s case folding (`K` matches U+212A) and `$` matching before a final `\n`.

use crate::classes::{ascii_set, is, is_alnum, is_ascii_in};
use crate::units::Unit;

const MAX_PATH: usize = 512;
const MAX_SPLITS: usize = 16;
const PATH_STOP: &[u8] = b" \t\r\n\"'<>`{}|^[]"; // `\` is a `/` to a browser (WHATWG URL)
const TRAILING: &[u8] = b".,;:!?)]}'\"*";
/// The ASCII characters of a path: printable, none of `PATH_STOP` (a table, not a search of
/// the stop list per character).
const PATH_ASCII: [bool; 128] = path_ascii();
/// The ASCII characters a path is not split at: letters, digits, `-`, `_`, `%`.
const UNSPLIT_ASCII: [bool; 128] = ascii_set(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_%",
);

const fn path_ascii() -> [bool; 128] {
    let stop = ascii_set(PATH_STOP);
    let mut table = [false; 128];
    let mut c = 0x20;
    while c < 0x7F {
        table[c] = !stop[c];
        c += 1;
    }
    table
}
const HOST: &[u8] = b"linkedin.com";
const K_AT: usize = 3; // where the host's `k` is

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

fn matches_at<U: Unit>(t: &[U], p: usize, pattern: &[u8]) -> bool {
    let Some(here) = t.get(p..p + pattern.len()) else {
        return false;
    };
    match U::ascii(here) {
        // All ASCII: a letter matches either case (`| 0x20`), any other byte only itself;
        // every byte tested at once, no early exit (the compiler vectorises it).
        Some(bytes) => bytes.iter().zip(pattern).fold(true, |same, (&c, &b)| {
            let case = if b.is_ascii_lowercase() { 0x20 } else { 0 };
            same & (c | case == b)
        }),
        None => pattern
            .iter()
            .zip(here)
            .all(|(&b, &c)| folds_to(c.code(), b)),
    }
}

pub fn linkedins<U: Unit>(t: &[U], out: &mut Vec<(usize, usize)>) {
    let mut ends = Vec::new(); // reused: no allocation per URL
    let mut p = 0;
    loop {
        // Anchored on the host's `k` (U+212A folds to it): far rarer in text than its `l`.
        let k = U::find(t, p + K_AT, b"kK", |c| c == 0x212A);
        if k + HOST.len() > t.len() + K_AT {
            break;
        }
        p = k - K_AT;
        if !matches_at(t, p, HOST) {
            p += 1;
            continue;
        }
        let host = p;
        p += HOST.len();
        let start = url_start(t, host);
        let before = if start > 0 { t[start - 1].code() } else { 0 };
        let glued = start > 0 && (is_alnum(before) || is_ascii_in(before, b"-_."));
        if glued && !has_slashes(&t[start..host]) {
            continue; // `notlinkedin.com`: another host (`xhttps://linkedin.com` is not)
        }
        let mut end = p;
        if end < t.len() && is(t[end].code(), b'.') {
            end += 1; // `linkedin.com./in/…`: the root label, same host
        }
        if end < t.len() && is(t[end].code(), b':') {
            let mut q = end + 1;
            while q < t.len() && q - end - 1 < 5 && (0x30..0x3A).contains(&t[q].code()) {
                q += 1;
            }
            if q > end + 1 {
                end = q;
            }
        }
        if end >= t.len() || !(is(t[end].code(), b'/') || is(t[end].code(), b'\\')) {
            continue;
        }
        path_ends(t, end, &mut ends);
        out.extend(ends.iter().map(|&stop| (start, stop)));
    }
}

/// Whether `//` occurs in `t` (a scheme written before the host).
fn has_slashes<U: Unit>(t: &[U]) -> bool {
    t.windows(2)
        .any(|w| is(w[0].code(), b'/') && is(w[1].code(), b'/'))
}

/// Where `$` of a search in `t[lo..hi]` may match: the end, or before a final newline.
fn dollar<U: Unit>(t: &[U], lo: usize, hi: usize) -> usize {
    if hi > lo && is(t[hi - 1].code(), b'\n') {
        hi - 1
    } else {
        hi
    }
}

fn is_label(c: u32) -> bool {
    c < 0x80 && ((c as u8).is_ascii_alphanumeric() || c == b'-' as u32)
}

fn url_start<U: Unit>(t: &[U], host: usize) -> usize {
    let lo = host.saturating_sub(64);
    let target = dollar(t, lo, host);
    let mut i = target;
    for _ in 0..4 {
        if i == lo || !is(t[i - 1].code(), b'.') {
            break;
        }
        let dot = i - 1;
        let mut j = dot;
        while j > lo && dot - j < 63 && is_label(t[j - 1].code()) {
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

#[inline]
fn is_path(c: u32) -> bool {
    if c < 0x80 {
        PATH_ASCII[c as usize]
    } else {
        is_alnum(c)
    }
}

/// A path character the path is not split at.
#[inline]
fn is_unsplit(c: u32) -> bool {
    if c < 0x80 {
        UNSPLIT_ASCII[c as usize]
    } else {
        is_alnum(c)
    }
}

fn path_ends<U: Unit>(t: &[U], slash: usize, ends: &mut Vec<usize>) {
    ends.clear();
    ends.extend([slash, slash]); // the path's end and its end trimmed, known once it is read
    let mut end = slash;
    let limit = t.len().min(slash + MAX_PATH);
    while end < limit && is_path(t[end].code()) {
        if end > slash && !is_unsplit(t[end].code()) && ends.len() < MAX_SPLITS {
            ends.push(end); // a split: the path cut before this mark
        }
        end += 1;
    }
    let mut trimmed = end;
    while trimmed > slash + 1 && is_ascii_in(t[trimmed - 1].code(), TRAILING) {
        trimmed -= 1;
    }
    ends[0] = end;
    ends[1] = trimmed;
    let mut kept = 0; // each end once, where first listed
    for i in 0..ends.len() {
        if !ends[..kept].contains(&ends[i]) {
            ends[kept] = ends[i];
            kept += 1;
        }
    }
    ends.truncate(kept);
}
