//! Which characters client text may hold (SPEC §2). No NUL or other C0 control character, nor
//! DEL, in ids, keys, URLs, cursors, codes, metadata keys — anything a program reads; free text
//! (a description, a metadata value) may also hold tab, newline and carriage return.
//!
//! One rule for every backend: PostgreSQL cannot store NUL in `text` while SQLite can, so the
//! rule is applied before any value reaches a database and both answer the same 400.

/// What a piece of text is for, which decides the characters it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Ids, keys, URLs, cursors, codes, metadata keys: no control character at all.
    Strict,
    /// Descriptions and metadata values: tab, newline and carriage return are allowed.
    Free,
}

/// Whether `kind` of text may hold `c`.
pub fn allowed(c: char, kind: TextKind) -> bool {
    match c {
        '\t' | '\n' | '\r' => kind == TextKind::Free,
        '\u{0}'..='\u{1f}' | '\u{7f}' => false,
        _ => true,
    }
}

/// The first character of `value` that `kind` of text may not hold, if any.
pub fn first_forbidden(value: &str, kind: TextKind) -> Option<char> {
    value.chars().find(|&c| !allowed(c, kind))
}

/// How a forbidden character is named in an error message: `U+0000`, never the raw byte.
pub fn describe(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// `value` with every character `kind` of text may not hold replaced by U+FFFD: for text the
/// server keeps but no API client sent (the start of a webhook receiver's answer), which must be
/// stored on every backend rather than refused.
pub fn replace_forbidden(value: &str, kind: TextKind) -> String {
    value
        .chars()
        .map(|c| if allowed(c, kind) { c } else { '\u{fffd}' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_c0_character_and_del_is_refused_in_strict_text() {
        for code in (0u32..0x20).chain([0x7f]) {
            let c = char::from_u32(code).expect("a character");
            assert!(!allowed(c, TextKind::Strict), "{code:#x}");
            let free = matches!(c, '\t' | '\n' | '\r');
            assert_eq!(allowed(c, TextKind::Free), free, "{code:#x}");
        }
    }

    #[test]
    fn printable_and_non_ascii_text_is_allowed() {
        for value in [
            "pay_0Vc0Q2m8kX1b4ZpT7rWq9nLs",
            "Café – 東京 🎉",
            " ~",
            "\u{80}\u{a0}",
        ] {
            assert_eq!(first_forbidden(value, TextKind::Strict), None, "{value}");
        }
        assert_eq!(first_forbidden("a\tb\r\nc", TextKind::Free), None);
        assert_eq!(first_forbidden("a\tb", TextKind::Strict), Some('\t'));
        assert_eq!(
            first_forbidden("ab\u{0}c\u{1b}", TextKind::Free),
            Some('\u{0}')
        );
        assert_eq!(describe('\u{1b}'), "U+001B");
        assert_eq!(
            replace_forbidden("ok\u{0}\tx\u{7f}", TextKind::Free),
            "ok\u{fffd}\tx\u{fffd}"
        );
    }
}
