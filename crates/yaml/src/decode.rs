//! Bytes → text, as kubectl decodes manifests: a UTF-8 BOM is dropped, a UTF-16 BOM (LE or BE)
//! selects UTF-16, and invalid sequences are replaced (U+FFFD) with a warning instead of
//! refusing the file.

use std::borrow::Cow;

/// Something lost while decoding; the text was still produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeWarning {
    /// Invalid UTF-8; the first bad byte is at `offset` and every bad sequence was replaced.
    #[error("not valid UTF-8 (first bad byte at offset {offset}); invalid bytes were replaced by U+FFFD")]
    InvalidUtf8 {
        /// Byte offset of the first invalid sequence.
        offset: usize,
    },
    /// Invalid UTF-16 (an unpaired surrogate or an odd trailing byte).
    #[error("not valid UTF-16 (first bad unit at offset {offset}); invalid units were replaced by U+FFFD")]
    InvalidUtf16 {
        /// Byte offset of the first invalid unit.
        offset: usize,
    },
}

/// Decoded text and what was lost on the way.
#[derive(Debug, Clone)]
pub struct Decoded<'a> {
    /// The text, without any byte-order mark.
    pub text: Cow<'a, str>,
    /// Set when something had to be replaced.
    pub warning: Option<DecodeWarning>,
}

/// Decode `data` as kubectl does: BOM-detected UTF-16 LE/BE, UTF-8 (BOM dropped), lossy.
pub fn decode(data: &[u8]) -> Decoded<'_> {
    if let Some(rest) = data.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = data.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, u16::from_be_bytes);
    }
    let data = data.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(data);
    match std::str::from_utf8(data) {
        Ok(t) => Decoded { text: Cow::Borrowed(t), warning: None },
        Err(e) => Decoded {
            text: String::from_utf8_lossy(data),
            warning: Some(DecodeWarning::InvalidUtf8 { offset: e.valid_up_to() }),
        },
    }
}

fn utf16(data: &[u8], unit: fn([u8; 2]) -> u16) -> Decoded<'static> {
    let units = data.chunks_exact(2).map(|c| unit([c[0], c[1]]));
    let mut text = String::with_capacity(data.len() / 2);
    let mut first_bad = None;
    let mut offset = 0;
    for r in char::decode_utf16(units) {
        match r {
            Ok(c) => {
                offset += 2 * c.len_utf16();
                text.push(c);
            }
            Err(_) => {
                first_bad.get_or_insert(offset);
                offset += 2;
                text.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }
    if data.len() % 2 == 1 {
        first_bad.get_or_insert(data.len() - 1);
        text.push(char::REPLACEMENT_CHARACTER);
    }
    // Offsets are reported in the original file, BOM included.
    Decoded { text: Cow::Owned(text), warning: first_bad.map(|o| DecodeWarning::InvalidUtf16 { offset: o + 2 }) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16_bytes(s: &str, be: bool) -> Vec<u8> {
        let mut out = if be { vec![0xFE, 0xFF] } else { vec![0xFF, 0xFE] };
        for u in s.encode_utf16() {
            out.extend(if be { u.to_be_bytes() } else { u.to_le_bytes() });
        }
        out
    }

    #[test]
    fn boms_and_lossy_utf8() {
        let s = "kind: Pod # é ✓ 𝄞\n";
        for be in [false, true] {
            let bytes = utf16_bytes(s, be);
            let d = decode(&bytes);
            assert_eq!(d.text, s);
            assert_eq!(d.warning, None);
        }
        assert_eq!(decode(b"\xEF\xBB\xBFa: 1\n").text, "a: 1\n");
        let d = decode(b"a: x\xFFy\n");
        assert_eq!(d.text, "a: x\u{fffd}y\n");
        assert_eq!(d.warning, Some(DecodeWarning::InvalidUtf8 { offset: 4 }));
        let mut odd = utf16_bytes("a", false);
        odd.push(0x41);
        let d = decode(&odd);
        assert_eq!(d.text, "a\u{fffd}");
        assert!(matches!(d.warning, Some(DecodeWarning::InvalidUtf16 { .. })));
        drop(d);
        // An unpaired surrogate.
        let d = decode(&[0xFF, 0xFE, 0x00, 0xD8, 0x41, 0x00]);
        assert_eq!(d.text, "\u{fffd}A");
        assert_eq!(d.warning, Some(DecodeWarning::InvalidUtf16 { offset: 2 }));
    }
}
