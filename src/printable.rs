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

/// The first `max_chars` characters of `s`, and `…` where it had more: a quotation of outside
/// text in a one-line error.
pub fn clip(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_whole_characters_and_marks_a_cut() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "abc…");
        assert_eq!(clip("ééé", 2), "éé…");
    }

    #[test]
    fn escape_sequences_lose_their_control_characters() {
        assert_eq!(
            printable("m\u{1b}[2J\u{1b}]0;t\u{7}\u{9b}31m\r|\tx\n"),
            "m[2J]0;t31m|\tx\n"
        );
        assert!(matches!(printable("plain · text"), Cow::Borrowed(_)));
    }
}
