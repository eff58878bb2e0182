//! Many values on one row, as arrays: a request's chunks on the request's own row (schema
//! v11) and the lateness ticker's batches (v12), where each chunk and each tick was a row.
//!
//! A request's chunks: `chunk_t_s` is the JSON array of the arrival instants (the shortest
//! number that reads back to each one's bits); `chunk_tokens` the JSON array of the tokens each
//! carried (`null` where unknown), or NULL when every one is unknown; `chunk_kinds` a letter a
//! chunk, `a` answer or `r` reasoning, or NULL when every one is an answer. A request recorded
//! before v11 has NULL `chunk_t_s` and its chunks as rows of `chunks`; the view `chunk_rows`
//! gives both as one row a chunk, for SQL.
//!
//! A batch of ticks (`tick_batches`, one step's): `t_s` the JSON array of the instants each tick
//! was due, `late_s` that of how late each woke. Runs recorded before v12 keep a row a tick in
//! `client_ticks`; the view `client_tick_rows` gives both.

use rusqlite::Row;
use rusqlite::types::ValueRef;

use ceiling_reports::{ChunkArrival, ChunkKind};

use super::StoreError;
use super::series::elements;

/// A request's chunks as its row stores them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StoredChunks {
    pub t_s: String,
    pub tokens: Option<String>,
    pub kinds: Option<String>,
}

/// Numbers as a JSON array, each the shortest that reads back to its bits; a value that is not
/// finite (never one from the probe's clock) as `null`.
pub(super) fn number_array(values: impl ExactSizeIterator<Item = f64>) -> String {
    let mut out = String::with_capacity(values.len() * 20 + 2);
    out.push('[');
    for (i, v) in values.enumerate() {
        if i > 0 {
            out.push(',');
        }
        if v.is_finite() {
            out.push_str(ryu::Buffer::new().format_finite(v));
        } else {
            out.push_str("null");
        }
    }
    out.push(']');
    out
}

/// The numbers of an array [`number_array`] wrote (`null` as NaN); a damaged one is an error
/// naming `column`.
pub(super) fn parse_numbers(column: &'static str, text: &str) -> Result<Vec<f64>, StoreError> {
    elements(column, text)?
        .into_iter()
        .map(|e| match e {
            "null" => Ok(f64::NAN),
            e => e.parse().map_err(|_| bad(column, e, "a number")),
        })
        .collect()
}

impl StoredChunks {
    pub(super) fn encode(chunks: &[ChunkArrival]) -> StoredChunks {
        let t_s = number_array(chunks.iter().map(|c| c.t_s));
        let tokens = chunks.iter().any(|c| c.tokens.is_some()).then(|| {
            let mut out = String::with_capacity(chunks.len() * 2 + 2);
            out.push('[');
            for (i, c) in chunks.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match c.tokens {
                    Some(n) => out.push_str(itoa::Buffer::new().format(n)),
                    None => out.push_str("null"),
                }
            }
            out.push(']');
            out
        });
        let kinds = chunks.iter().any(|c| c.kind != ChunkKind::Answer).then(|| {
            chunks
                .iter()
                .map(|c| match c.kind {
                    ChunkKind::Answer => 'a',
                    ChunkKind::Reasoning => 'r',
                })
                .collect()
        });
        StoredChunks { t_s, tokens, kinds }
    }

    /// Each chunk in order, as `(t_s, tokens, reasoning)`, to `push`; a damaged column is an
    /// error naming it.
    pub(super) fn decode(
        t_s: &str,
        tokens: Option<&str>,
        kinds: Option<&str>,
        mut push: impl FnMut(f64, Option<u32>, bool),
    ) -> Result<(), StoreError> {
        let times = parse_numbers("chunk_t_s", t_s)?;
        let counts = match tokens {
            Some(text) => Some(elements("chunk_tokens", text)?),
            None => None,
        };
        let kinds = kinds.map(str::as_bytes);
        let n = times.len();
        let mismatch = |column, len: usize| StoreError::Column {
            column,
            what: format!("{len} entries for {n} chunks"),
        };
        if let Some(c) = &counts
            && c.len() != n
        {
            return Err(mismatch("chunk_tokens", c.len()));
        }
        if let Some(k) = kinds
            && k.len() != n
        {
            return Err(mismatch("chunk_kinds", k.len()));
        }
        for (i, &t_s) in times.iter().enumerate() {
            let tokens = match counts.as_ref().map(|c| c[i]) {
                None | Some("null") => None,
                Some(e) => Some(
                    e.parse()
                        .map_err(|_| bad("chunk_tokens", e, "a token count"))?,
                ),
            };
            let reasoning = match kinds.map(|k| k[i]) {
                None | Some(b'a') => false,
                Some(b'r') => true,
                Some(other) => {
                    let letter = char::from(other).to_string();
                    return Err(bad("chunk_kinds", &letter, "a chunk's kind (a or r)"));
                }
            };
            push(t_s, tokens, reasoning);
        }
        Ok(())
    }

    /// Decodes the chunks of a request row whose three chunk columns start at `at`: false
    /// when the row holds none (a request recorded before v11; its chunks are rows).
    pub(super) fn decode_row(
        r: &Row<'_>,
        at: usize,
        push: impl FnMut(f64, Option<u32>, bool),
    ) -> Result<bool, StoreError> {
        let Some(t_s) = text(r, at, "chunk_t_s")? else {
            return Ok(false);
        };
        let tokens = text(r, at + 1, "chunk_tokens")?;
        let kinds = text(r, at + 2, "chunk_kinds")?;
        StoredChunks::decode(t_s, tokens, kinds, push)?;
        Ok(true)
    }
}

/// A text column, or `None` where NULL.
fn text<'r>(r: &'r Row<'_>, i: usize, column: &'static str) -> Result<Option<&'r str>, StoreError> {
    let what = match r.get_ref(i)? {
        ValueRef::Null => return Ok(None),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(t) => return Ok(Some(t)),
            Err(_) => "not UTF-8",
        },
        _ => "not text",
    };
    Err(StoreError::Column {
        column,
        what: what.into(),
    })
}

fn bad(column: &'static str, text: &str, what: &str) -> StoreError {
    StoreError::Column {
        column,
        what: format!("{} is not {what}", crate::printable::clip(text, 60)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The chunks as records.
    fn arrivals(
        t_s: &str,
        tokens: Option<&str>,
        kinds: Option<&str>,
    ) -> Result<Vec<ChunkArrival>, StoreError> {
        let mut out = Vec::new();
        StoredChunks::decode(t_s, tokens, kinds, |t_s, tokens, reasoning| {
            let kind = if reasoning {
                ChunkKind::Reasoning
            } else {
                ChunkKind::Answer
            };
            out.push(ChunkArrival { t_s, tokens, kind });
        })?;
        Ok(out)
    }

    fn chunk(t_s: f64, tokens: Option<u32>, kind: ChunkKind) -> ChunkArrival {
        ChunkArrival { t_s, tokens, kind }
    }

    #[test]
    fn chunks_read_back_as_written_and_the_common_cases_take_one_column() {
        let plain: Vec<_> = [0.1, 0.123_456_789_012_345_67, 1e-7, 12_345.678]
            .iter()
            .map(|&t| chunk(t, None, ChunkKind::Answer))
            .collect();
        let s = StoredChunks::encode(&plain);
        assert_eq!(s.t_s, "[0.1,0.12345678901234566,1e-7,12345.678]");
        assert_eq!((s.tokens.as_deref(), s.kinds.as_deref()), (None, None));
        let back = arrivals(&s.t_s, None, None).unwrap();
        assert_eq!(back, plain, "every instant to its bits");
        let mixed = vec![
            chunk(0.5, Some(2), ChunkKind::Reasoning),
            chunk(0.6, None, ChunkKind::Answer),
            chunk(0.7, Some(u32::MAX), ChunkKind::Answer),
        ];
        let s = StoredChunks::encode(&mixed);
        assert_eq!(s.tokens.as_deref(), Some("[2,null,4294967295]"));
        assert_eq!(s.kinds.as_deref(), Some("raa"));
        let back = arrivals(&s.t_s, s.tokens.as_deref(), s.kinds.as_deref());
        assert_eq!(back.unwrap(), mixed);
        let none = StoredChunks::encode(&[]);
        assert_eq!(none.t_s, "[]");
        assert!(arrivals("[]", None, None).unwrap().is_empty());
    }

    #[test]
    fn a_damaged_column_is_an_error_that_names_it() {
        for (t_s, tokens, kinds, column) in [
            ("0.1,0.2", None, None, "chunk_t_s"),
            ("[0.1,x]", None, None, "chunk_t_s"),
            ("[0.1,0.2]", Some("[1]"), None, "chunk_tokens"),
            ("[0.1]", Some("[-1]"), None, "chunk_tokens"),
            ("[0.1]", None, Some("aa"), "chunk_kinds"),
            ("[0.1]", None, Some("z"), "chunk_kinds"),
        ] {
            match arrivals(t_s, tokens, kinds) {
                Err(StoreError::Column { column: c, .. }) => assert_eq!(c, column, "{t_s}"),
                other => panic!("{t_s} {tokens:?} {kinds:?}: {other:?}"),
            }
        }
    }
}
