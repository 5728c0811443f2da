//! Alpine version order, as apk-tools' tokenising comparison.
//!
//! A version is `numbers[letter][_suffix[N]]...[-rN]`. It is read as a stream of typed
//! tokens (digits after `.`, a letter, a suffix, a suffix number, a revision number);
//! tokens of the same type compare by value. Pre-release suffixes `_alpha`, `_beta`, `_pre`,
//! `_rc` sort below the plain version, post-release suffixes `_cvs`, `_svn`, `_git`, `_hg`,
//! `_p` above it. A component with leading zeros after a `.` (`1.05`) compares as a
//! negative count of zeros, as apk does. Where the two streams diverge in token type,
//! the one that goes on is greater, unless it goes on with a pre-release suffix. Like apk,
//! malformed tails are compared as far as they can be tokenised.

use std::cmp::Ordering;

use super::{cmp_digits, digits_end, strip_zeros};

/// Token types, in apk's numeric order (the order matters for the final comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tok {
    Invalid,
    DigitOrZero,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    RevisionNo,
    End,
}

/// A token value: small integers, or a digit run too long for an `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Val<'a> {
    Small(i64),
    Big(&'a [u8]),
}

impl Ord for Val<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Val::Small(a), Val::Small(b)) => a.cmp(b),
            (Val::Small(_), Val::Big(_)) => Ordering::Less,
            (Val::Big(_), Val::Small(_)) => Ordering::Greater,
            (Val::Big(a), Val::Big(b)) => cmp_digits(a, b),
        }
    }
}

impl PartialOrd for Val<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

fn number(d: &[u8]) -> Val<'_> {
    let d = strip_zeros(d);
    if d.len() > 18 {
        return Val::Big(d);
    }
    Val::Small(d.iter().fold(0i64, |v, c| v * 10 + i64::from(c - b'0')))
}

const PRE_SUFFIXES: [&[u8]; 4] = [b"alpha", b"beta", b"pre", b"rc"];
const POST_SUFFIXES: [&[u8]; 5] = [b"cvs", b"svn", b"git", b"hg", b"p"];

struct Cursor<'a> {
    s: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn rest(&self) -> &'a [u8] {
        self.s.get(self.pos..).unwrap_or_default()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.s.len()
    }

    fn peek(&self, k: usize) -> Option<u8> {
        self.s.get(self.pos + k).copied()
    }

    /// apk's `next_token`: the type of the token at the cursor, consuming its separator.
    fn next_token(&mut self, t: &mut Tok) {
        let c = match self.peek(0) {
            None | Some(0) => {
                *t = Tok::End;
                return;
            }
            Some(c) => c,
        };
        let mut n = if matches!(*t, Tok::Digit | Tok::DigitOrZero) && c.is_ascii_lowercase() {
            Tok::Letter
        } else if *t == Tok::Letter && c.is_ascii_digit() {
            Tok::Digit
        } else if *t == Tok::Suffix && c.is_ascii_digit() {
            Tok::SuffixNo
        } else {
            let n = match c {
                b'.' => Tok::DigitOrZero,
                b'_' => Tok::Suffix,
                b'-' if self.peek(1) == Some(b'r') => {
                    self.pos += 1;
                    Tok::RevisionNo
                }
                _ => Tok::Invalid,
            };
            self.pos += 1;
            n
        };
        if n < *t
            && !((n == Tok::DigitOrZero && *t == Tok::Digit)
                || (n == Tok::Suffix && *t == Tok::SuffixNo)
                || (n == Tok::Digit && *t == Tok::Letter))
        {
            n = Tok::Invalid;
        }
        *t = n;
    }

    /// apk's `get_token`: the value of the token of type `t` at the cursor; advances `t`.
    fn get_token(&mut self, t: &mut Tok) -> Val<'a> {
        if self.at_end() {
            *t = Tok::End;
            return Val::Small(0);
        }
        let rest = self.rest();
        let mut next = Tok::Invalid;
        let (v, len) = match *t {
            Tok::DigitOrZero if rest.first() == Some(&b'0') => {
                let zeros = rest.iter().take_while(|&&c| c == b'0').count();
                next = Tok::Digit;
                (Val::Small(-(zeros as i64)), zeros)
            }
            Tok::DigitOrZero | Tok::Digit | Tok::SuffixNo | Tok::RevisionNo => {
                let end = digits_end(rest, 0);
                (number(&rest[..end]), end)
            }
            Tok::Letter => (Val::Small(i64::from(rest[0])), 1),
            Tok::Suffix => {
                if let Some(i) = PRE_SUFFIXES.iter().position(|s| rest.starts_with(s)) {
                    next = Tok::SuffixNo;
                    (Val::Small(i as i64 - PRE_SUFFIXES.len() as i64), PRE_SUFFIXES[i].len())
                } else if let Some(i) = POST_SUFFIXES.iter().position(|s| rest.starts_with(s)) {
                    next = Tok::SuffixNo;
                    (Val::Small(i as i64), POST_SUFFIXES[i].len())
                } else {
                    *t = Tok::Invalid;
                    return Val::Small(-1);
                }
            }
            Tok::Invalid | Tok::End => {
                *t = Tok::Invalid;
                return Val::Small(-1);
            }
        };
        self.pos += len;
        if self.at_end() {
            *t = Tok::End;
        } else if next != Tok::Invalid {
            *t = next;
        } else {
            self.next_token(t);
        }
        v
    }
}

fn valid(s: &str) -> bool {
    s.as_bytes().first().is_some_and(u8::is_ascii_digit)
}

/// Compare two Alpine versions; `None` when either does not start with a digit.
pub(crate) fn compare(a: &str, b: &str) -> Option<Ordering> {
    let (a, b) = (a.trim(), b.trim());
    if !valid(a) || !valid(b) {
        return None;
    }
    let mut ca = Cursor { s: a.as_bytes(), pos: 0 };
    let mut cb = Cursor { s: b.as_bytes(), pos: 0 };
    let (mut at, mut bt) = (Tok::Digit, Tok::Digit);
    let (mut av, mut bv) = (Val::Small(0), Val::Small(0));
    while at == bt && at != Tok::End && at != Tok::Invalid && av == bv {
        av = ca.get_token(&mut at);
        bv = cb.get_token(&mut bt);
    }
    if av != bv {
        return Some(av.cmp(&bv));
    }
    if at == bt {
        return Some(Ordering::Equal);
    }
    // Equal so far; the one that goes on is newer, unless with a pre-release suffix.
    if at == Tok::Suffix && ca.get_token(&mut at.clone()) < Val::Small(0) {
        return Some(Ordering::Less);
    }
    if bt == Tok::Suffix && cb.get_token(&mut bt.clone()) < Val::Small(0) {
        return Some(Ordering::Greater);
    }
    Some(bt.cmp(&at))
}

#[cfg(test)]
mod tests {
    use crate::record::EcoKind;
    use crate::version::testutil::{check, check_invalid};

    #[test]
    fn version_apk_order() {
        check(
            EcoKind::Alpine,
            &[
                ("1.0", "=", "1.0"),
                ("1.0", "<", "1.1"),
                ("1.2", "<", "1.10"),
                ("1.1.24-r2", "<", "1.1.24-r10"),
                ("1.1.24-r10", ">", "1.1.24-r9"),
                ("1.1.24", "<", "1.1.24-r0"),
                ("1.1.24-r0", "<", "1.1.24-r1"),
                ("1.0_rc1", "<", "1.0"),
                ("1.0_rc1", "<", "1.0_rc2"),
                ("1.0_alpha", "<", "1.0_beta"),
                ("1.0_beta", "<", "1.0_pre"),
                ("1.0_pre", "<", "1.0_rc"),
                ("1.0_alpha2", ">", "1.0_alpha"),
                ("1.0_p1", ">", "1.0"),
                ("1.0_p1", "<", "1.0_p2"),
                ("1.0_p9-r0", "<", "1.0_p10-r0"),
                ("1.0_cvs", "<", "1.0_svn"),
                ("1.0_svn", "<", "1.0_git"),
                ("1.0_git", "<", "1.0_hg"),
                ("1.0_hg", "<", "1.0_p"),
                ("1.2.3_git20200101", ">", "1.2.3"),
                ("1.2.3_git20200101", "<", "1.2.4"),
                ("1.2.3_git20200101", "<", "1.2.3_git20200102"),
                ("1.2.3_git20200101-r1", ">", "1.2.3_git20200101"),
                ("0.1.0_alpha_pre2", "<", "0.1.0_alpha"),
                ("1.0.0_pre20191002222144-r0", "<", "1.0.0_pre20210530193627-r0"),
                ("1.3_pre1-r1", "<", "1.3.2"),
                ("2.3.0b-r1", "<", "2.3.0b-r2"),
                ("1.7", "<", "1.7b"),
                ("2.5.1-r8", "<", "2.5.1a-r1"),
                ("0.9.8c-r1", "<", "0.9.8d"),
                ("1.0", "<", "1.0bc"),
                ("1.0.4-r4", "<", "1.6"),
                ("0.99.3.20040818", "<", "1.0"),
                ("2.59", "<", "20050718-r1"),
                ("1.06-r6", "<", "006"),
                ("1.2.12.1", "<", "1.2.13"),
                ("1.2.9.1-r1", ">", "1.2.9.1"),
                ("20040406-r1", ">", "2.12r-r4"),
                ("2.12r-r4", "<", "2.12r-r5"),
                ("1-r2", ">", "1-r-1"),
                ("1", "<", "1-ruff"),
                ("1-ruff2", "=", "1-ruff1"),
                ("3.1.4-r5", "<", "3.1.4_p1"),
                ("123456789012345678901234567890", "<", "123456789012345678901234567891"),
                ("1.0.123456789012345678901234567890", ">", "1.0.99"),
            ],
        );
    }

    #[test]
    fn version_apk_invalid() {
        check_invalid(EcoKind::Alpine, &["", " ", "r1", "_rc1", "v1.0", "-r1"]);
    }
}
