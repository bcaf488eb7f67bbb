//! Phone candidates (rules/detect/phonescan.py): every window of 7 to 18 digits of every digit run,
//! and every number written with an exponent. `\d` is any Unicode decimal digit, as in `re`.

use crate::classes::{is, is_ascii_in, is_decimal, is_space};
use crate::units::Unit;

const MIN_DIGITS: usize = 7;
const MAX_DIGITS: usize = 18;

fn dec<U: Unit>(t: &[U], i: usize) -> bool {
    i < t.len() && is_decimal(t[i].code())
}

fn digits_end<U: Unit>(t: &[U], mut i: usize) -> usize {
    while dec(t, i) {
        i += 1;
    }
    i
}

/// rules/detect/phonescan.py `_SEP`: ASCII separators, no-break space, Unicode spaces and dashes,
/// the one dot leader.
fn is_sep(c: u32) -> bool {
    matches!(c, 0xA0 | 0x1680 | 0x2000..=0x200A | 0x202F | 0x205F | 0x3000 | 0x2010..=0x2015
        | 0x2212 | 0x2024)
        || is_ascii_in(c, b" .-/()")
}

/// The end of `_RUN` matched at `p`, if it matches there; `groups`: its digit runs.
fn run_at<U: Unit>(t: &[U], p: usize, groups: &mut Vec<(usize, usize)>) -> Option<usize> {
    let c = t[p].code();
    let first = if is(c, b'+') && dec(t, p + 1) {
        p + 1
    } else if is(c, b'(') {
        if p + 1 < t.len() && is_space(t[p + 1].code()) && dec(t, p + 2) {
            p + 2
        } else if dec(t, p + 1) {
            p + 1
        } else {
            return None;
        }
    } else if is_decimal(c) {
        p
    } else {
        return None;
    };
    groups.clear();
    let mut end = digits_end(t, first);
    groups.push((first, end));
    loop {
        let mut r = end;
        while r < t.len() && r - end < 3 && is_sep(t[r].code()) {
            r += 1;
        }
        if r == end || !dec(t, r) {
            return Some(end);
        }
        end = digits_end(t, r);
        groups.push((r, end));
    }
}

/// Phone windows (`phones`) and numbers written with an exponent (`numbers`) in one pass
/// over the text: both start at digits, so one skip to the next `+`, `(`, `-` or digit
/// serves both, and a number reads the digit run a phone run already measured.
pub fn phones_and_numbers<U: Unit>(
    t: &[U],
    phones: &mut Vec<(usize, usize)>,
    numbers: &mut Vec<(usize, usize)>,
) {
    let mut groups = Vec::new(); // the digit runs of the last phone run: (start, end)
    let (mut phone_next, mut number_next) = (0, 0);
    loop {
        let q = U::skip_to_digit(t, phone_next.min(number_next), b"+(-", is_decimal);
        if q >= t.len() {
            break;
        }
        if q >= phone_next {
            phone_next = match run_at(t, q, &mut groups) {
                Some(end) => {
                    run_windows(t, q, end, &groups, phones);
                    end
                }
                None => q + 1,
            };
        }
        if q >= number_next {
            number_next = number_at(t, q, &groups, numbers);
        }
    }
}

/// `_EXPONENT` tried at `q`: where the search for the next number goes on.
fn number_at<U: Unit>(
    t: &[U],
    q: usize,
    groups: &[(usize, usize)],
    numbers: &mut Vec<(usize, usize)>,
) -> usize {
    let digits = if is(t[q].code(), b'-') && dec(t, q + 1) {
        q + 1
    } else if is_decimal(t[q].code()) {
        q
    } else {
        return q + 1;
    };
    // A digit run's end depends only on where it starts: one a phone run measured serves.
    let run_end = match groups.iter().find(|&&(start, _)| start == digits) {
        Some(&(_, end)) => end,
        None => digits_end(t, digits),
    };
    match exponent_from(t, run_end) {
        Some(end) => {
            numbers.push((q, end));
            end
        }
        None => run_end,
    }
}

fn run_windows<U: Unit>(
    t: &[U],
    start: usize,
    end: usize,
    groups: &[(usize, usize)],
    out: &mut Vec<(usize, usize)>,
) {
    let total: usize = groups.iter().map(|&(s, e)| e - s).sum();
    if total < MIN_DIGITS {
        return;
    }
    debug_assert!(groups.last().is_some_and(|&(_, e)| e == end));
    for (index, &(first, _)) in groups.iter().enumerate() {
        let window_start = if index == 0 {
            start
        } else {
            with_prefix(t, first, groups[index - 1].1)
        };
        let mut digits = 0;
        for &(group_start, group_end) in &groups[index..] {
            digits += group_end - group_start;
            if digits > MAX_DIGITS {
                break;
            }
            if digits >= MIN_DIGITS {
                out.push((window_start, group_end));
            }
        }
    }
}

fn with_prefix<U: Unit>(t: &[U], first: usize, previous_end: usize) -> usize {
    if first > previous_end && is(t[first - 1].code(), b'(') {
        first - 1
    } else {
        first
    }
}

/// The end of `_EXPONENT` matched at a digit run ending at `run_end`, if it matches.
fn exponent_from<U: Unit>(t: &[U], run_end: usize) -> Option<usize> {
    let mut e = run_end;
    if e < t.len() && is(t[e].code(), b'.') && dec(t, e + 1) {
        e = digits_end(t, e + 1);
        if !(e < t.len() && is_ascii_in(t[e].code(), b"eE")) {
            return None;
        }
    } else if !(e < t.len() && is_ascii_in(t[e].code(), b"eE")) {
        return None;
    }
    let mut k = e + 1;
    if k < t.len() && is_ascii_in(t[k].code(), b"+-") && dec(t, k + 1) {
        k += 1;
    }
    if !dec(t, k) {
        return None;
    }
    let mut end = k;
    while end - k < 3 && dec(t, end) {
        end += 1;
    }
    Some(end)
}
