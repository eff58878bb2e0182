//! Text from outside (an engine's model name or error body, a file's field) made safe to print
//! on a terminal: control characters other than newline and tab are dropped, so an escape
//! sequence cannot clear the screen, retitle the window or hide a line. JSON output needs no
//! such step (serde_json escapes them); the reports escape HTML themselves.

use std::borrow::Cow;

fn is_unsafe(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// `s` without its control characters (C0 but newline and tab, DEL, C1).
pub fn printable(s: &str) -> Cow<'_, str> {
    if s.chars().any(is_unsafe) {
        Cow::Owned(s.chars().filter(|&c| !is_unsafe(c)).collect())
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_lose_their_control_characters() {
        assert_eq!(
            printable("m\u{1b}[2J\u{1b}]0;t\u{7}\u{9b}31m\r|\tx\n"),
            "m[2J]0;t31m|\tx\n"
        );
        assert!(matches!(printable("plain · text"), Cow::Borrowed(_)));
    }
}
