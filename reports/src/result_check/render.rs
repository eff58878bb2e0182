//! The checks as a terminal table and as Markdown (for a PR comment).

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

use super::{Check, Verdict};

/// The worst verdict, `pass` when there is no check.
pub fn worst(checks: &[Check]) -> Verdict {
    checks
        .iter()
        .map(|c| c.verdict)
        .max()
        .unwrap_or(Verdict::Pass)
}

fn counts(checks: &[Check]) -> String {
    let n = |v: Verdict| checks.iter().filter(|c| c.verdict == v).count();
    format!(
        "{} pass, {} warn, {} fail, {} cannot tell",
        n(Verdict::Pass),
        n(Verdict::Warn),
        n(Verdict::Fail),
        n(Verdict::CannotTell)
    )
}

/// A heading line, then one row per check: verdict, group, code, and the message.
pub fn terminal(title: &str, checks: &[Check]) -> String {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(120)
        .set_header(["verdict", "group", "check", "numbers, cause and fix"]);
    for c in checks {
        table.add_row([c.verdict.as_str(), c.group, c.code, c.message.as_str()]);
    }
    format!("{title}\n{table}\n{}\n", counts(checks))
}

/// A Markdown section: the title, a table of the checks, and the tally.
pub fn markdown(title: &str, checks: &[Check]) -> String {
    let mut out =
        format!("### {title}\n\n| verdict | check | numbers, cause and fix |\n|---|---|---|\n");
    for c in checks {
        let mark = match c.verdict {
            Verdict::Pass => "✅ pass",
            Verdict::Warn => "⚠️ warn",
            Verdict::Fail => "❌ fail",
            Verdict::CannotTell => "❔ cannot tell",
        };
        out.push_str(&format!(
            "| {mark} | `{}` | {} |\n",
            c.code,
            c.message.replace('|', "\\|")
        ));
    }
    out.push_str(&format!("\n{}\n", counts(checks)));
    out
}
