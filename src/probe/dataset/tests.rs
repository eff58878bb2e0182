use std::io::Write;

use super::*;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn refused(text: &str) -> String {
    let f = file(text);
    match Dataset::load(f.path(), None, 64, false)
        .unwrap_err()
        .downcast::<Failure>()
    {
        Ok(Failure::Usage(m)) => m,
        other => panic!("not a usage error: {other:?}"),
    }
}

#[test]
fn the_shipped_sharegpt_file_reads_with_its_one_turn_conversations_skipped() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/datasets/sharegpt-synthetic.json");
    let set = Dataset::load(&path, None, 64, false).unwrap();
    assert_eq!(set.lengths.len(), 240);
    assert_eq!(set.skipped, 10);
    assert!(set.estimated);
    // Real ShareGPT's shape: short prompts, longer answers, a long tail.
    let mean = |k: fn(&(u32, u32)) -> u32| {
        set.lengths.iter().map(|l| f64::from(k(l))).sum::<f64>() / set.lengths.len() as f64
    };
    let (mi, mo) = (mean(|l| l.0), mean(|l| l.1));
    assert!(mi < mo, "{mi} {mo}");
    assert!(set.longest().1 as f64 > 2.5 * mo, "{:?}", set.longest());
}

#[test]
fn jsonl_takes_prompts_or_lengths() {
    let f = file(
        "{\"prompt_len\": 100, \"output_len\": 20}\n\n{\"prompt\": \"abcdefghij\"}\n{\"prompt_len\": 7, \"output_len\": 300}\n",
    );
    let set = Dataset::load(f.path(), None, 64, false).unwrap();
    assert_eq!(set.lengths, [(100, 20), (3, 64), (7, 300)]);
    assert!(set.texts.is_empty(), "no text kept unless it is sent");
    // Kept to send: the prompt's text, none for a line of lengths.
    let set = Dataset::load(f.path(), None, 64, true).unwrap();
    assert_eq!(set.texts, [None, Some("abcdefghij".into()), None]);
}

#[test]
fn sharegpt_keeps_each_conversations_first_turn_to_send() {
    let f = file(
        "[{\"conversations\": [{\"from\": \"human\", \"value\": \"What is a KV cache?\"}, \
         {\"from\": \"gpt\", \"value\": \"The keys and values of past tokens.\"}]}]",
    );
    let set = Dataset::load(f.path(), None, 64, true).unwrap();
    assert_eq!(set.texts, [Some("What is a KV cache?".into())]);
    assert_eq!(set.lengths, [(5, 9)]);
}

#[test]
fn a_malformed_dataset_is_refused_with_its_line() {
    let m = refused("{\"prompt_len\": 100, \"output_len\": 20}\n{\"prompt_len\": 5}\n");
    assert!(m.contains("line 2 is neither"), "{m}");
    let m = refused("{\"prompt\": \"a\"}\nnot json\n");
    assert!(m.contains("line 2"), "{m}");
    let m = refused(
        "[\n {\"conversations\": [{\"from\": \"human\", \"value\": \"hi\"}]},\n {\"turns\": []}\n]",
    );
    assert!(m.contains("line 3"), "{m}");
    assert!(refused("").contains("holds no request"));
    assert!(
        refused("{\"prompt_len\": 4, \"output_len\": 1}").contains("entry 1 asks for 1 output")
    );
    let m = match Dataset::load(Path::new("/nonexistent/set.jsonl"), None, 64, false)
        .unwrap_err()
        .downcast::<Failure>()
    {
        Ok(Failure::Usage(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(m.contains("cannot be read"), "{m}");
}
