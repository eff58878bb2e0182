//! A position in one line of an exposition body, and the lexical pieces of the format read
//! from it (metric and label names, words, quoted label values), for the parser in
//! [`super`].

use std::borrow::Cow;

/// A position in one line. Advances only past ASCII delimiters or whole chars, so every slice
/// falls on a char boundary.
pub(super) struct Cursor<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(s: &'a str) -> Self {
        Cursor { s, pos: 0 }
    }

    pub(super) fn rest(&self) -> &'a str {
        self.s.get(self.pos..).unwrap_or("")
    }

    /// The byte at the cursor: the delimiters the format uses are all ASCII, so stepping past
    /// one byte of them keeps the cursor on a char boundary (this runs for every byte between
    /// the fields of every sample of every scrape).
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// What is at the cursor, for error messages.
    pub(super) fn found(&self) -> String {
        let rest = self.rest();
        if rest.is_empty() {
            return "the end of the line".into();
        }
        let shown: String = rest.chars().take(24).collect();
        if shown.len() < rest.len() {
            format!("`{shown}…`")
        } else {
            format!("`{shown}`")
        }
    }

    /// Steps past `c` (an ASCII delimiter) if it is at the cursor.
    pub(super) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub(super) fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    fn take_while(&mut self, first: fn(u8) -> bool, next: fn(u8) -> bool) -> Option<&'a str> {
        let bytes = self.rest().as_bytes();
        match bytes.first() {
            Some(&b) if first(b) => {}
            _ => return None,
        }
        let len = 1 + bytes[1..].iter().take_while(|&&b| next(b)).count();
        let start = self.pos;
        self.pos += len;
        self.s.get(start..self.pos)
    }

    pub(super) fn metric_name(&mut self) -> Option<&'a str> {
        self.take_while(
            |b| b.is_ascii_alphabetic() || b == b'_' || b == b':',
            |b| b.is_ascii_alphanumeric() || b == b'_' || b == b':',
        )
    }

    pub(super) fn label_name(&mut self) -> Option<&'a str> {
        self.take_while(
            |b| b.is_ascii_alphabetic() || b == b'_',
            |b| b.is_ascii_alphanumeric() || b == b'_',
        )
    }

    /// Everything up to the next blank.
    pub(super) fn word(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find([' ', '\t']).unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    /// A label value after its opening quote, unescaped, through the closing quote: borrowed
    /// from the line where it holds no escape, as most do.
    pub(super) fn quoted(&mut self) -> Option<Cow<'a, str>> {
        let rest = self.rest();
        if let Some(i) = rest.find(['"', '\\'])
            && rest.as_bytes()[i] == b'"'
        {
            self.pos += i + 1;
            return Some(Cow::Borrowed(&rest[..i]));
        }
        let mut out = String::new();
        let mut chars = rest.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    return Some(Cow::Owned(out));
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, '"')) => out.push('"'),
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, other)) => {
                        out.push('\\');
                        out.push(other);
                    }
                    None => return None,
                },
                c => out.push(c),
            }
        }
        None
    }
}
