//! The exposition parser's cost on one body (issue 18): parses FILE N times, each parse read
//! against the one before as the scraper reads a scrape against the last, and prints the time a
//! parse and a sample. Under `valgrind --tool=callgrind` the difference between two counts of
//! parses gives the instructions of one.
//!
//!   cargo run --release -p ceiling-collectors --example parse_scrape -- [FILE] [N]
//!
//! FILE defaults to an SGLang capture in `fixtures/expositions/` (85 samples), N to 1,000; the
//! simulator's own body is `curl -s URL/metrics`.

use std::time::Instant;

use ceiling_collectors::prometheus::parse_after;

fn main() {
    if let Err(e) = run() {
        eprintln!("parse_scrape: {e}");
        std::process::exit(2);
    }
}

fn run() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let file = args.next().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/expositions/sglang-0.5.x-dp8-attention-reconstructed.prom"
        )
        .to_string()
    });
    let n: u32 = match args.next() {
        Some(n) => n
            .parse()
            .map_err(|_| format!("N must be a whole number of parses, not `{n}`"))?,
        None => 1_000,
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("{file}: {e}; give an exposition file as FILE"))?;
    let mut last = Vec::new();
    let start = Instant::now();
    for _ in 0..n {
        last = parse_after(std::hint::black_box(&text), &last).samples;
    }
    let per_parse = start.elapsed().as_secs_f64() / f64::from(n.max(1));
    println!(
        "{file}: {} bytes, {} samples; {n} parses, {:.1} µs a parse, {:.0} ns a sample",
        text.len(),
        last.len(),
        per_parse * 1e6,
        per_parse * 1e9 / last.len().max(1) as f64
    );
    Ok(())
}
