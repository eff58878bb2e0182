//! The per-step table, built once: [`step_rows`] gives one [`StepRow`] of typed figures per
//! step, and [`StepColumn`]s turn a row into [`Cell`]s. The terminal ([`crate::terminal`]), HTML
//! and Markdown ([`super::step_table()`]) render the same columns from the same rows; only how a
//! missing figure looks is theirs.

use crate::analysis::Analysis;

/// One cell: text that is always there (step, batch, lengths, counts), or a figure in its
/// column's unit that could be missing.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Figure { value: Option<f64>, digits: usize },
}

impl Cell {
    /// The cell as text; `missing` stands for a figure that could not be measured.
    pub fn render(&self, missing: &str) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            Cell::Figure {
                value: Some(v),
                digits,
            } => format!("{v:.digits$}"),
            Cell::Figure { value: None, .. } => missing.to_string(),
        }
    }
}

/// One step's figures, in SI units as the analysis gives them.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub step_idx: u32,
    pub batch_size: u32,
    /// An open-loop (rate) step: no batch of its own, its bs column shows `rate`.
    pub open_loop: bool,
    pub input_len: u32,
    pub output_len: u32,
    pub requests_ok: u32,
    pub requests_failed: u32,
    pub ttft_p50_s: Option<f64>,
    pub ttft_p99_s: Option<f64>,
    pub tpot_p50_s: Option<f64>,
    pub itl_p99_s: Option<f64>,
    pub e2e_p50_s: Option<f64>,
    pub output_tokens_per_s: Option<f64>,
    pub t_fwd_client_s: Option<f64>,
    pub t_fwd_identity_s: Option<f64>,
    pub t_fwd_engine_s: Option<f64>,
    pub mtp: f64,
    pub gpu_util_mean_pct: Option<f64>,
    pub energy_per_output_token_j: Option<f64>,
    pub roofline_t_min_s: Option<f64>,
    pub roofline_efficiency: Option<f64>,
    /// DCGM profiling ratios (0–1) in the windows: what the step is bound by.
    pub gr_engine_active: Option<f64>,
    pub sm_active: Option<f64>,
    pub sm_occupancy: Option<f64>,
    pub dram_active: Option<f64>,
    pub tensor_active: Option<f64>,
}

/// A column: its header (unit included) and how a row fills it.
pub struct StepColumn {
    pub header: &'static str,
    pub cell: fn(&StepRow) -> Cell,
}

const fn col(header: &'static str, cell: fn(&StepRow) -> Cell) -> StepColumn {
    StepColumn { header, cell }
}

fn text(v: impl ToString) -> Cell {
    Cell::Text(v.to_string())
}

fn ms(v: Option<f64>) -> Cell {
    Cell::Figure {
        value: v.map(|s| s * 1e3),
        digits: 2,
    }
}

fn figure(value: Option<f64>, digits: usize) -> Cell {
    Cell::Figure { value, digits }
}

/// The columns every report shows.
const COLUMNS: &[StepColumn] = &[
    col("step", |r| text(r.step_idx)),
    col("bs", |r| {
        if r.open_loop {
            text("rate")
        } else {
            text(r.batch_size)
        }
    }),
    col("in/out tok", |r| {
        text(format!("{}/{}", r.input_len, r.output_len))
    }),
    col("ok/failed", |r| {
        text(format!("{}/{}", r.requests_ok, r.requests_failed))
    }),
    col("TTFT p50 ms", |r| ms(r.ttft_p50_s)),
    col("TTFT p99 ms", |r| ms(r.ttft_p99_s)),
    col("TPOT p50 ms", |r| ms(r.tpot_p50_s)),
    col("ITL p99 ms", |r| ms(r.itl_p99_s)),
    col("E2E p50 s", |r| figure(r.e2e_p50_s, 2)),
    col("out tok/s", |r| figure(r.output_tokens_per_s, 0)),
    col("t_fwd client ms", |r| ms(r.t_fwd_client_s)),
    col("t_fwd identity ms", |r| ms(r.t_fwd_identity_s)),
    col("t_fwd engine ms", |r| ms(r.t_fwd_engine_s)),
    col("MTP", |r| figure(Some(r.mtp), 2)),
    col("GPU util %", |r| figure(r.gpu_util_mean_pct, 0)),
    col("J/tok", |r| figure(r.energy_per_output_token_j, 3)),
];

/// The columns shown when the run was compared with a roofline.
const ROOFLINE_COLUMNS: &[StepColumn] = &[
    col("t_min ms", |r| ms(r.roofline_t_min_s)),
    col("roofline eff %", |r| {
        figure(r.roofline_efficiency.map(|e| e * 100.0), 0)
    }),
];

fn pct(v: Option<f64>) -> Cell {
    figure(v.map(|r| r * 100.0), 0)
}

/// The columns shown when the GPU source gave DCGM profiling ratios, after the roofline's:
/// decode should be memory-bound (DRAM active high, tensor active low).
const PROFILING_COLUMNS: &[StepColumn] = &[
    col("GR active %", |r| pct(r.gr_engine_active)),
    col("SM active %", |r| pct(r.sm_active)),
    col("SM occupancy %", |r| pct(r.sm_occupancy)),
    col("DRAM active %", |r| pct(r.dram_active)),
    col("tensor active %", |r| pct(r.tensor_active)),
];

/// The analysis's steps as rows, in step order.
pub fn step_rows(a: &Analysis) -> Vec<StepRow> {
    a.steps
        .iter()
        .zip(&a.timings)
        .map(|(s, t)| StepRow {
            step_idx: s.step_idx,
            batch_size: s.batch_size,
            open_loop: s.pattern == crate::recording::Pattern::Rate,
            input_len: s.input_len,
            output_len: s.output_len,
            requests_ok: s.requests_ok,
            requests_failed: s.requests_failed,
            ttft_p50_s: s.ttft_s.map(|d| d.p50),
            ttft_p99_s: s.ttft_s.map(|d| d.p99),
            tpot_p50_s: s.tpot_s.map(|d| d.p50),
            itl_p99_s: s.itl_s.map(|d| d.p99),
            e2e_p50_s: s.e2e_s.map(|d| d.p50),
            output_tokens_per_s: s.output_tokens_per_s,
            t_fwd_client_s: t.t_fwd_client_s,
            t_fwd_identity_s: t.t_fwd_identity_s,
            t_fwd_engine_s: t.t_fwd_engine_s,
            mtp: t.mtp,
            gpu_util_mean_pct: t.gpu.util_mean_pct,
            energy_per_output_token_j: t.gpu.energy_per_output_token_j,
            roofline_t_min_s: t.roofline_t_min_s,
            roofline_efficiency: t.roofline_efficiency,
            gr_engine_active: t.gpu.gr_engine_active,
            sm_active: t.gpu.sm_active,
            sm_occupancy: t.gpu.sm_occupancy,
            dram_active: t.gpu.dram_active,
            tensor_active: t.gpu.tensor_active,
        })
        .collect()
}

/// The columns for these rows: the roofline's only when some step has a roofline figure, the
/// profiling ratios' only when some step has one.
pub fn step_columns(rows: &[StepRow]) -> Vec<&'static StepColumn> {
    let roofline = rows.iter().any(|r| r.roofline_t_min_s.is_some());
    let profiling = rows.iter().any(|r| {
        [
            r.gr_engine_active,
            r.sm_active,
            r.sm_occupancy,
            r.dram_active,
            r.tensor_active,
        ]
        .iter()
        .any(Option::is_some)
    });
    let extra = if roofline { ROOFLINE_COLUMNS } else { &[] };
    let prof = if profiling { PROFILING_COLUMNS } else { &[] };
    COLUMNS.iter().chain(extra).chain(prof).collect()
}

/// Headers and rendered cells of the table, `missing` standing for a figure that could not be
/// measured.
pub fn rendered(a: &Analysis, missing: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let rows = step_rows(a);
    let columns = step_columns(&rows);
    let headers = columns.iter().map(|c| c.header.to_string()).collect();
    let cells = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| (c.cell)(r).render(missing))
                .collect()
        })
        .collect();
    (headers, cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> StepRow {
        StepRow {
            step_idx: 2,
            batch_size: 16,
            open_loop: false,
            input_len: 128,
            output_len: 101,
            requests_ok: 31,
            requests_failed: 1,
            ttft_p50_s: Some(0.05),
            ttft_p99_s: Some(0.0612),
            tpot_p50_s: Some(0.0112),
            itl_p99_s: None,
            e2e_p50_s: Some(1.17),
            output_tokens_per_s: Some(1272.4),
            t_fwd_client_s: Some(0.0112),
            t_fwd_identity_s: None,
            t_fwd_engine_s: Some(0.01125),
            mtp: 1.0,
            gpu_util_mean_pct: Some(95.2),
            energy_per_output_token_j: Some(0.3531),
            roofline_t_min_s: None,
            roofline_efficiency: None,
            gr_engine_active: None,
            sm_active: None,
            sm_occupancy: None,
            dram_active: None,
            tensor_active: None,
        }
    }

    #[test]
    fn a_row_renders_in_the_column_units_with_the_given_missing_mark() {
        let rows = vec![row()];
        let columns = step_columns(&rows);
        assert_eq!(columns.len(), 16, "no roofline columns without a roofline");
        let cells: Vec<String> = columns
            .iter()
            .map(|c| (c.cell)(&rows[0]).render("–"))
            .collect();
        assert_eq!(
            cells,
            [
                "2", "16", "128/101", "31/1", "50.00", "61.20", "11.20", "–", "1.17", "1272",
                "11.20", "–", "11.25", "1.00", "95", "0.353"
            ]
        );
    }

    #[test]
    fn the_roofline_columns_appear_when_any_step_has_a_roofline() {
        let mut with = row();
        with.roofline_t_min_s = Some(0.0056);
        with.roofline_efficiency = Some(0.5);
        let rows = vec![row(), with];
        let columns = step_columns(&rows);
        let headers: Vec<&str> = columns.iter().map(|c| c.header).collect();
        assert_eq!(headers[16..], ["t_min ms", "roofline eff %"]);
        let last: Vec<String> = columns[16..]
            .iter()
            .map(|c| (c.cell)(&rows[1]).render("-"))
            .collect();
        assert_eq!(last, ["5.60", "50"]);
        assert_eq!((columns[17].cell)(&rows[0]).render("-"), "-");
    }

    #[test]
    fn the_profiling_columns_follow_the_roofline_when_a_step_has_them() {
        let mut with = row();
        with.roofline_t_min_s = Some(0.0056);
        with.roofline_efficiency = Some(0.5);
        with.dram_active = Some(0.823);
        with.tensor_active = Some(0.08);
        let rows = vec![with];
        let columns = step_columns(&rows);
        let headers: Vec<&str> = columns.iter().map(|c| c.header).collect();
        assert_eq!(
            headers[17..],
            [
                "roofline eff %",
                "GR active %",
                "SM active %",
                "SM occupancy %",
                "DRAM active %",
                "tensor active %"
            ]
        );
        let cells: Vec<String> = columns[17..]
            .iter()
            .map(|c| (c.cell)(&rows[0]).render("-"))
            .collect();
        assert_eq!(cells, ["50", "-", "-", "-", "82", "8"]);
        assert_eq!(step_columns(&[row()]).len(), 16, "none without a ratio");
    }
}
