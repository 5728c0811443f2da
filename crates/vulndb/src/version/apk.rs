//! Alpine version order, as apk-tools' tokenising comparison (the current apk-tools
//! tokenizer, which also understands `~commit` hashes).
//!
//! Grammar: `digits{.digits}...{letter}{_suffix{digits}}...{~hash}{-rdigits}`, where a
//! suffix is one of `alpha`, `beta`, `pre`, `rc` (pre-releases, below the plain version)
//! or `cvs`, `svn`, `git`, `hg`, `p` (post-releases, above it). The two versions are read
//! token by token; tokens of the same type compare by value (numbers numerically, except
//! that a `.`-component with a leading zero compares as a string, as in Gentoo; suffixes
//! in the order above; hashes as strings). When one version runs out or continues with a
//! different kind of token, the one that goes on is greater, unless it goes on with a
//! pre-release suffix: `1.0_rc1` < `1.0` < `1.0-r1` < `1.0_p1`.
//!
//! Versions apk would reject (`apk_version_validate`) give `None`.

use std::cmp::Ordering;

use super::{cmp_digits, digits_end};

/// Token types, in apk's order (the order decides when two versions diverge).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Tok {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
    Invalid,
}

/// Suffixes in order; `NONE` (no suffix) sits between the pre- and post-releases.
const SUFFIXES: [&[u8]; 9] = [b"alpha", b"beta", b"pre", b"rc", b"cvs", b"svn", b"git", b"hg", b"p"];
const SUFFIX_NONE: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Tok,
    /// The token's text (digits, the letter, the suffix name, the hash).
    value: &'a [u8],
    /// Rank of a suffix token (index in `SUFFIXES`, shifted past `SUFFIX_NONE`).
    suffix: usize,
}

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    tok: Token<'a>,
}

impl<'a> Lexer<'a> {
    fn new(s: &'a [u8]) -> Self {
        let mut l = Lexer { s, pos: 0, tok: Token { kind: Tok::InitialDigit, value: b"", suffix: 0 } };
        l.digits();
        l
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn span(&mut self, ok: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.pos;
        while self.peek().is_some_and(&ok) {
            self.pos += 1;
        }
        &self.s[start..self.pos]
    }

    fn digits(&mut self) {
        let end = digits_end(self.s, self.pos);
        self.tok.value = &self.s[self.pos..end];
        self.pos = end;
        if self.tok.value.is_empty() {
            self.tok.kind = Tok::Invalid;
        }
    }

    fn invalid(&mut self) {
        self.tok.kind = Tok::Invalid;
    }

    /// Move to the next token, checking that it may follow the current one.
    fn advance(&mut self) {
        let cur = self.tok.kind;
        let Some(c) = self.peek() else {
            self.tok.kind = Tok::End;
            return;
        };
        match c {
            b'a'..=b'z' => {
                if cur > Tok::Digit {
                    return self.invalid();
                }
                self.tok.value = &self.s[self.pos..self.pos + 1];
                self.tok.kind = Tok::Letter;
                self.pos += 1;
            }
            b'.' | b'0'..=b'9' => {
                if c == b'.' {
                    if cur > Tok::Digit {
                        return self.invalid();
                    }
                    self.pos += 1;
                }
                self.tok.kind = match cur {
                    Tok::InitialDigit | Tok::Digit => Tok::Digit,
                    Tok::Suffix => Tok::SuffixNo,
                    _ => return self.invalid(),
                };
                self.digits();
            }
            b'_' => {
                if cur > Tok::SuffixNo {
                    return self.invalid();
                }
                self.pos += 1;
                let name = self.span(|c| c.is_ascii_lowercase());
                let Some(i) = SUFFIXES.iter().position(|s| *s == name) else { return self.invalid() };
                self.tok.value = name;
                self.tok.suffix = if i < SUFFIX_NONE { i } else { i + 1 };
                self.tok.kind = Tok::Suffix;
            }
            b'~' => {
                if cur >= Tok::CommitHash {
                    return self.invalid();
                }
                self.pos += 1;
                let hash = self.span(|c| c.is_ascii_hexdigit());
                if hash.is_empty() {
                    return self.invalid();
                }
                self.tok.value = hash;
                self.tok.kind = Tok::CommitHash;
            }
            b'-' => {
                if cur >= Tok::RevisionNo || self.s.get(self.pos + 1) != Some(&b'r') {
                    return self.invalid();
                }
                self.pos += 2;
                self.tok.kind = Tok::RevisionNo;
                self.digits();
            }
            _ => self.invalid(),
        }
    }
}

/// Compare two tokens of the same type.
fn token_cmp(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        Tok::Digit if a.value.first() == Some(&b'0') || b.value.first() == Some(&b'0') => a.value.cmp(b.value),
        Tok::InitialDigit | Tok::Digit | Tok::SuffixNo | Tok::RevisionNo => cmp_digits(a.value, b.value),
        Tok::Letter => a.value.cmp(b.value),
        Tok::Suffix => a.suffix.cmp(&b.suffix),
        _ => a.value.cmp(b.value),
    }
}

/// `apk_version_validate`: the whole string tokenises.
fn valid(s: &[u8]) -> bool {
    let mut l = Lexer::new(s);
    while l.tok.kind < Tok::End {
        l.advance();
    }
    l.tok.kind == Tok::End
}

/// The trimmed version when apk would accept it (`apk_version_validate`).
pub(crate) fn parse(s: &str) -> Option<&[u8]> {
    let b = s.trim().as_bytes();
    valid(b).then_some(b)
}

/// Compare two valid Alpine versions.
pub(crate) fn cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut la, mut lb) = (Lexer::new(a), Lexer::new(b));
    while la.tok.kind == lb.tok.kind && la.tok.kind < Tok::End {
        let o = token_cmp(&la.tok, &lb.tok);
        if o != Ordering::Equal {
            return o;
        }
        la.advance();
        lb.advance();
    }
    let (ta, tb) = (la.tok, lb.tok);
    if ta.kind == tb.kind {
        return Ordering::Equal;
    }
    // Equal so far: the one that goes on is newer, unless with a pre-release suffix.
    if ta.kind == Tok::Suffix && ta.suffix < SUFFIX_NONE {
        return Ordering::Less;
    }
    if tb.kind == Tok::Suffix && tb.suffix < SUFFIX_NONE {
        return Ordering::Greater;
    }
    tb.kind.cmp(&ta.kind)
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
                ("1.0.4-r4", "<", "1.6"),
                ("0.99.3.20040818", "<", "1.0"),
                ("2.59", "<", "20050718-r1"),
                ("1.06-r6", "<", "006"),
                ("1.2.12.1", "<", "1.2.13"),
                ("1.2.9.1-r1", ">", "1.2.9.1"),
                ("20040406-r1", ">", "2.12r-r4"),
                ("2.12r-r4", "<", "2.12r-r5"),
                ("1.05", "<", "1.5"),
                ("1.0", "<", "1.00"),
                ("1.2.3~abc123", ">", "1.2.3"),
                ("1.2.3~abc123", "<", "1.2.3~abd"),
                ("1.2.3~abc-r1", ">", "1.2.3~abc"),
                ("1.2.3_p1~abc", ">", "1.2.3_p1"),
                ("1.0-r1", "<", "1.0_p1"),
                ("1.0-r1", ">", "1.0"),
                ("3.1.4-r5", "<", "3.1.4_p1"),
                ("123456789012345678901234567890", "<", "123456789012345678901234567891"),
                ("1.0.123456789012345678901234567890", ">", "1.0.99"),
            ],
        );
    }

    #[test]
    fn version_apk_invalid() {
        check_invalid(
            EcoKind::Alpine,
            &[
                "",
                " ",
                "r1",
                "_rc1",
                "v1.0",
                "-r1",
                "1-r-1",
                "1-ruff",
                "1.0bc",
                "1.0_foo",
                "1.0_Rc1",
                "1.0-r",
                "1.0-r1-r2",
                "1.0A",
                "1.2a3",
                "1.0.",
                "1.0_rc1.2",
                "1.0~",
                "1.0~xyz",
                "1.0 beta",
            ],
        );
    }
}
