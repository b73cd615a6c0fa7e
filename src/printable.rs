//! `printable`: the one escaping of database text for terminals, used by every text renderer
//! of the command line, the status page and the metrics' labels. A leaf, so that the command
//! line and the HTTP side share it without depending on each other.

use std::borrow::Cow;
use std::fmt::Write;

/// Text of the database made safe to print: control characters (C0, DEL, C1) and the
/// bidirectional controls are written as `\x1b` or `\u{202e}`. Other systems write
/// `PROCESE` and `STATUS_PROCESS`; a name holding `ESC ]0;...` must neither retitle nor
/// recolour the operator's terminal, and should show what it holds.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match u32::from(c) {
            _ if !needs_escape(c) => out.push(c),
            code @ 0..=0xFF => {
                let _ = write!(out, "\\x{code:02x}");
            }
            code => {
                let _ = write!(out, "\\u{{{code:x}}}");
            }
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_text_prints_without_terminal_controls() {
        assert_eq!(printable("httpd"), "httpd");
        assert_eq!(printable("\u{1b}]0;pwned\u{7}"), "\\x1b]0;pwned\\x07");
        assert_eq!(printable("a\u{9b}b\u{202e}c\td"), "a\\x9bb\\u{202e}c\\x09d");
        assert_eq!(printable("café ✗"), "café ✗");
    }
}
