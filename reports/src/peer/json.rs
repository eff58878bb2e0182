//! Reading the tools' JSON: Python's non-standard `Infinity` and `NaN` (SGLang writes a bare
//! `Infinity` for an unlimited rate), JSON Lines, and typed getters whose errors name the key
//! path and what was expected.

use serde_json::Value;

use super::PeerError;

/// Python's `json.dumps` tokens that strict JSON lacks, outside strings: `Infinity` becomes the
/// string `"Infinity"` (read as +∞ by [`Node::f64`]), `NaN` becomes `null`. Jumps from one quote
/// or token letter to the next (`memchr`), so a long file costs a scan, not a step per character.
fn sanitize(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("Infinity") && !text.contains("NaN") {
        return std::borrow::Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 16);
    // `copied`: bytes before it are in `out`; `at`: where the search for the next quote or
    // token letter (outside strings) starts. Both sit on ASCII bytes, so on char boundaries.
    let (mut copied, mut at) = (0, 0);
    while let Some(off) = memchr::memchr3(b'"', b'I', b'N', &bytes[at..]) {
        let i = at + off;
        let rest = &text[i..];
        let (len, with) = match bytes[i] {
            b'"' => {
                at = string_end(bytes, i + 1);
                continue;
            }
            _ if rest.starts_with("Infinity") => (8, "\"Infinity\""),
            _ if rest.starts_with("NaN") => (3, "null"),
            _ => {
                at = i + 1;
                continue;
            }
        };
        let minus = bytes[i] == b'I' && i > copied && bytes[i - 1] == b'-';
        out.push_str(&text[copied..i - usize::from(minus)]);
        out.push_str(if minus { "\"-Infinity\"" } else { with });
        at = i + len;
        copied = at;
    }
    out.push_str(&text[copied..]);
    std::borrow::Cow::Owned(out)
}

/// The index just past the quote that closes a JSON string whose body starts at `at` (a
/// backslash escapes the byte after it), or the end of the text for an unclosed one.
fn string_end(bytes: &[u8], mut at: usize) -> usize {
    while let Some(off) = memchr::memchr2(b'"', b'\\', &bytes[at..]) {
        let i = at + off;
        if bytes[i] == b'"' {
            return i + 1;
        }
        at = (i + 2).min(bytes.len());
    }
    bytes.len()
}

fn located(e: &serde_json::Error, line_offset: usize) -> PeerError {
    PeerError::new(
        format!("line {} column {}", e.line() + line_offset, e.column()),
        format!("not valid JSON ({e}); expected a complete JSON document"),
    )
}

/// One JSON document.
pub fn parse(text: &str) -> Result<Value, PeerError> {
    serde_json::from_str(&sanitize(text)).map_err(|e| located(&e, 0))
}

/// One JSON document, or JSON Lines (one object per non-blank line, as vLLM's
/// `--append-result` and SGLang's `--output-file` write).
pub fn parse_documents(text: &str) -> Result<Vec<Value>, PeerError> {
    let clean = sanitize(text);
    match serde_json::from_str::<Value>(&clean) {
        Ok(Value::Array(items)) if items.iter().all(Value::is_object) && !items.is_empty() => {
            Ok(items)
        }
        Ok(v) => Ok(vec![v]),
        Err(whole) => {
            let lines: Vec<(usize, &str)> = clean
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
                .collect();
            if lines.len() < 2 {
                return Err(located(&whole, 0));
            }
            lines
                .into_iter()
                .map(|(i, l)| serde_json::from_str(l).map_err(|e| located(&e, i)))
                .collect()
        }
    }
}

/// A value in a document with the path that reached it, so a wrong value is reported where it
/// is.
#[derive(Debug, Clone)]
pub struct Node<'a> {
    pub v: &'a Value,
    pub path: String,
}

/// A child of a [`Node`] (the same type: a value and its path).
pub type Child<'a> = Node<'a>;

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A number, or a string holding one (llmperf's numpy integers, `"inf"`, `"Infinity"`).
pub fn as_f64(v: &Value) -> Option<Option<f64>> {
    match v {
        Value::Null => Some(None),
        Value::Number(n) => Some(n.as_f64()),
        Value::String(s) => match s.trim() {
            "inf" | "Infinity" | "+Infinity" => Some(Some(f64::INFINITY)),
            "-inf" | "-Infinity" => Some(Some(f64::NEG_INFINITY)),
            t => t.parse::<f64>().ok().map(Some),
        },
        _ => None,
    }
}

impl<'a> Node<'a> {
    pub fn root(v: &'a Value) -> Self {
        Node {
            v,
            path: String::new(),
        }
    }

    /// This same node (children are nodes; kept for readability at call sites).
    pub fn node(&self) -> Node<'a> {
        self.clone()
    }

    pub fn path(&self) -> &str {
        if self.path.is_empty() {
            "the top level"
        } else {
            &self.path
        }
    }

    pub fn has(&self, key: &str) -> bool {
        self.v.get(key).is_some()
    }

    /// The child at `key`, if present and not null.
    pub fn get(&self, key: &str) -> Option<Child<'a>> {
        self.v.get(key).filter(|v| !v.is_null()).map(|v| Child {
            v,
            path: join(&self.path, key),
        })
    }

    /// The number at `key`: `None` when absent or null; an error naming the key when it holds
    /// something else.
    pub fn f64(&self, key: &str) -> Result<Option<f64>, PeerError> {
        match self.v.get(key) {
            None => Ok(None),
            Some(v) => as_f64(v).ok_or_else(|| {
                PeerError::new(
                    format!("key `{}`", join(&self.path, key)),
                    format!("expected a number, found {}", kind(v)),
                )
            }),
        }
    }

    /// The number at `key`, which must be there.
    pub fn need_f64(&self, key: &str) -> Result<f64, PeerError> {
        self.f64(key)?.ok_or_else(|| {
            PeerError::new(
                format!("key `{}`", join(&self.path, key)),
                "expected a number, but it is missing or null",
            )
        })
    }

    /// A count at `key` (a number or a numeric string), rounded.
    pub fn u64(&self, key: &str) -> Result<Option<u64>, PeerError> {
        Ok(self
            .f64(key)?
            .filter(|x| x.is_finite() && *x >= 0.0)
            .map(|x| x.round() as u64))
    }

    pub fn str(&self, key: &str) -> Option<String> {
        match self.v.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        self.v.get(key).and_then(Value::as_bool)
    }

    /// The list at `key` (`None` when absent or null; an error when not a list).
    pub fn list(&self, key: &str) -> Result<Option<Vec<Child<'a>>>, PeerError> {
        match self.v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => {
                let base = join(&self.path, key);
                Ok(Some(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, v)| Child {
                            v,
                            path: format!("{base}[{i}]"),
                        })
                        .collect(),
                ))
            }
            Some(v) => Err(PeerError::new(
                format!("key `{}`", join(&self.path, key)),
                format!("expected a list, found {}", kind(v)),
            )),
        }
    }

    /// The list of numbers at `key` (nulls and non-numbers are errors naming the index).
    pub fn f64s(&self, key: &str) -> Result<Option<Vec<f64>>, PeerError> {
        match self.get(key) {
            None => Ok(None),
            Some(c) => c.node().f64s_here().map(Some),
        }
    }

    /// This value as a list.
    pub fn list_here(&self) -> Result<Vec<Child<'a>>, PeerError> {
        let Value::Array(items) = self.v else {
            return Err(PeerError::new(
                format!("key `{}`", self.path()),
                format!("expected a list, found {}", kind(self.v)),
            ));
        };
        Ok(items
            .iter()
            .enumerate()
            .map(|(i, v)| Child {
                v,
                path: format!("{}[{i}]", self.path),
            })
            .collect())
    }

    /// This value as a list of numbers.
    pub fn f64s_here(&self) -> Result<Vec<f64>, PeerError> {
        let Value::Array(items) = self.v else {
            return Err(PeerError::new(
                format!("key `{}`", self.path()),
                format!("expected a list of numbers, found {}", kind(self.v)),
            ));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                as_f64(v).flatten().ok_or_else(|| {
                    PeerError::new(
                        format!("key `{}[{i}]`", self.path),
                        format!("expected a number, found {}", kind(v)),
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_infinity_outside_strings_becomes_a_string_and_inside_stays() {
        let v =
            parse(r#"{"request_rate": Infinity, "x": -Infinity, "y": NaN, "s": "Infinity NaN"}"#)
                .expect("lenient JSON");
        let n = Node::root(&v);
        assert_eq!(n.f64("request_rate").expect("number"), Some(f64::INFINITY));
        assert_eq!(n.f64("x").expect("number"), Some(f64::NEG_INFINITY));
        assert_eq!(n.f64("y").expect("null"), None);
        assert_eq!(n.str("s").as_deref(), Some("Infinity NaN"));
    }

    #[test]
    fn sanitize_replaces_tokens_outside_strings_only() {
        for (text, want) in [
            (
                "[Infinity,-Infinity,NaN]",
                r#"["Infinity","-Infinity",null]"#,
            ),
            ("NaN-Infinity", r#"null"-Infinity""#),
            ("--Infinity", r#"-"-Infinity""#),
            (r#"["a\"NaN", NaN]"#, r#"["a\"NaN", null]"#),
            (r#"["\\", NaN]"#, r#"["\\", null]"#),
            (
                r#"{"é\é": Infinity, "Inf": INaN}"#,
                r#"{"é\é": "Infinity", "Inf": Inull}"#,
            ),
            ("[1, Inf, Na, N]", "[1, Inf, Na, N]"),
            (r#"["NaN"#, r#"["NaN"#),
            (r"NaN\", r"null\"),
            (r#"["\"#, r#"["\"#),
        ] {
            assert_eq!(sanitize(text), want, "{text}");
        }
    }

    #[test]
    fn json_lines_error_names_the_line() {
        let err = parse_documents("{\"a\": 1}\n{\"a\": 2}\n{\"a\": \n").expect_err("truncated");
        assert!(err.at.starts_with("line 3"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key_path() {
        let v = parse(r#"{"m": {"n": [1, "x"]}}"#).expect("json");
        let m = Node::root(&v).get("m").expect("m");
        let err = m
            .node()
            .f64s("n")
            .expect_err("a string in a list of numbers");
        assert_eq!(err.at, "key `m.n[1]`");
    }
}
