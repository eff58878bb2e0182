//! The parser on mutated real captures: bytes flipped to the format's metacharacters, lines cut,
//! duplicated, swapped and truncated anywhere. It must never panic, every error must name a
//! line of the input, and the lines left intact must still parse. Seeded, so a failure names
//! its case.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::parse;
use super::tests::all_fixtures;

const META: &[u8] = b"{}\",=\\#\n\r e+-.:_ \tNaInf";

fn mutate(text: &str, rng: &mut SmallRng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..6) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.random_range(0..bytes.len());
        match rng.random_range(0..5) {
            0 => bytes[at] = META[rng.random_range(0..META.len())],
            1 => bytes.truncate(at),
            2 => {
                let end = (at + rng.random_range(1..80)).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                let to = rng.random_range(0..bytes.len());
                bytes.splice(to..to, piece);
            }
            3 => {
                bytes.remove(at);
            }
            _ => bytes.insert(at, META[rng.random_range(0..META.len())]),
        }
    }
    // The parser takes text: keep what is valid UTF-8 (mutations stay ASCII, cuts may not).
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn mutated_captures_never_panic_and_errors_name_a_line() {
    let mut cases = 0;
    for (name, text) in all_fixtures() {
        let clean = parse(&text);
        for seed in 0..300u64 {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mutated = mutate(&text, &mut rng);
            let lines = mutated.lines().count().max(1);
            let e = parse(&mutated);
            for err in &e.errors {
                assert!(
                    err.line >= 1 && err.line <= lines + 1,
                    "{name} seed {seed}: error on line {} of {lines}: {}",
                    err.line,
                    err.message
                );
            }
            // A few mutations touch a handful of lines: most samples survive.
            assert!(
                e.samples.len() + 64 * (e.errors.len() + 6) >= clean.samples.len() / 2
                    || mutated.len() < text.len() / 2,
                "{name} seed {seed}: {} of {} samples left, {} errors",
                e.samples.len(),
                clean.samples.len(),
                e.errors.len()
            );
            cases += 1;
        }
    }
    assert!(cases >= 19 * 300);
}
