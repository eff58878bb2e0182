//! `nvidia-smi --query-gpu=... --format=csv[,nounits] -lms N` logs, for runs recorded without
//! `ceiling`'s sampler (`ceiling import-gpu`).
//!
//! Columns are found by name, in any order, so any subset of the known fields works (a header
//! is any line with a `timestamp` or `index` column, wherever it stands); the header gives the
//! units (`memory.used [MiB]`) and, without `nounits`, each value repeats
//! them (`75870 MiB`). `[N/A]`, `[Not Supported]`, `N/A` and the like are no value. A repeated
//! header line (logs appended to) starts a new table. Timestamps are the machine's local time
//! with no zone: [`SmiRow::naive_unix_s`] reads them as if they were UTC and the importer
//! applies the offset the user gives.

use crate::{GpuInfo, GpuSample};

use super::GpuError;

/// One row of the log: when (naive, see the module doc) and what.
#[derive(Debug, Clone, PartialEq)]
pub struct SmiRow {
    pub naive_unix_s: f64,
    /// `t_s` is 0 here; the importer sets it against the run's start.
    pub sample: GpuSample,
}

/// A parsed log: rows in file order, the GPUs seen, and the lines that could not be read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SmiLog {
    pub rows: Vec<SmiRow>,
    pub inventory: Vec<GpuInfo>,
    pub errors: Vec<GpuError>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Field {
    Timestamp,
    Index,
    Name,
    Uuid,
    PciBusId,
    Serial,
    Driver,
    UtilGpu,
    UtilMem,
    MemUsed,
    MemTotal,
    Power,
    PowerLimit,
    SmClock,
    MemClock,
    MaxSmClock,
    MaxMemClock,
    Temp,
    Reasons,
    Other,
}

fn field_of(key: &str) -> Field {
    match key {
        "timestamp" => Field::Timestamp,
        "index" => Field::Index,
        "name" | "gpu_name" => Field::Name,
        "uuid" | "gpu_uuid" => Field::Uuid,
        "pci.bus_id" | "gpu_bus_id" => Field::PciBusId,
        "serial" | "gpu_serial" => Field::Serial,
        "driver_version" => Field::Driver,
        "utilization.gpu" => Field::UtilGpu,
        "utilization.memory" => Field::UtilMem,
        "memory.used" => Field::MemUsed,
        "memory.total" => Field::MemTotal,
        "power.draw" | "power.draw.instant" | "power.draw.average" => Field::Power,
        "power.limit" | "enforced.power.limit" => Field::PowerLimit,
        "clocks.sm" | "clocks.current.sm" => Field::SmClock,
        "clocks.mem" | "clocks.current.memory" => Field::MemClock,
        "clocks.max.sm" | "clocks.max.sm_clock" => Field::MaxSmClock,
        "clocks.max.mem" | "clocks.max.memory" => Field::MaxMemClock,
        "temperature.gpu" => Field::Temp,
        "clocks_event_reasons.active" | "clocks_throttle_reasons.active" => Field::Reasons,
        _ => Field::Other,
    }
}

struct Column {
    field: Field,
    /// The unit in the header's brackets, if any.
    unit: Option<String>,
}

fn parse_header(line: &str) -> Vec<Column> {
    line.split(',')
        .map(|h| {
            let h = h.trim();
            let (key, unit) = match h.find(" [") {
                Some(i) => (
                    &h[..i],
                    Some(h[i + 2..].trim_end_matches(']').trim().to_string()),
                ),
                None => (h, None),
            };
            Column {
                field: field_of(key),
                unit,
            }
        })
        .collect()
}

/// A value without its unit; `None` for `[N/A]`-style markers or an empty cell.
fn bare(cell: &str) -> Option<&str> {
    let c = cell.trim();
    if c.is_empty() || c.starts_with('[') || c.eq_ignore_ascii_case("N/A") {
        return None;
    }
    Some(c)
}

/// A number with an optional unit suffix (`75870 MiB`), returned with that suffix.
fn number(cell: &str) -> Option<(f64, Option<&str>)> {
    let c = bare(cell)?;
    let (num, unit) = match c.find(' ') {
        Some(i) => (&c[..i], Some(c[i + 1..].trim())),
        None => (c, None),
    };
    num.parse::<f64>().ok().map(|v| (v, unit))
}

fn bytes_per(unit: &str) -> Option<f64> {
    Some(match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    })
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026/11/22 14:03:12.101` (or with `-`) as seconds since the epoch, read as UTC.
pub fn parse_timestamp(s: &str) -> Option<f64> {
    let (date, time) = s.trim().split_once(' ')?;
    let mut d = date.split(['/', '-']).map(|x| x.parse::<i64>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.trim().split(':');
    let h = t.next()?.parse::<i64>().ok()?;
    let mi = t.next()?.parse::<i64>().ok()?;
    let sec = t.next()?.parse::<f64>().ok()?;
    // A year past 9999 overflowed the day count (found by fuzzing: `2049638230412170674/11/22`).
    if !(1..=9999).contains(&y)
        || !(1..=12).contains(&mo)
        || !(1..=31).contains(&da)
        || !(0..=23).contains(&h)
        || !(0..=59).contains(&mi)
        || !(0.0..61.0).contains(&sec)
    {
        return None;
    }
    Some((days_from_civil(y, mo, da) * 86_400 + h * 3600 + mi * 60) as f64 + sec)
}

/// Parses a whole log. Fails only when no header is found; bad rows are listed in `errors`.
pub fn parse_nvidia_smi_csv(text: &str) -> Result<SmiLog, GpuError> {
    let mut log = SmiLog::default();
    let mut columns: Option<Vec<Column>> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols = parse_header(line);
        if cols
            .iter()
            .any(|c| matches!(c.field, Field::Timestamp | Field::Index))
        {
            if !cols.iter().any(|c| c.field == Field::Index) {
                return Err(GpuError::SmiCsv {
                    line: line_no,
                    message: "the header has no `index` column; add index to --query-gpu".into(),
                });
            }
            if !cols.iter().any(|c| c.field == Field::Timestamp) {
                return Err(GpuError::SmiCsv {
                    line: line_no,
                    message: "the header has no `timestamp` column; add timestamp to --query-gpu"
                        .into(),
                });
            }
            columns = Some(cols);
            continue;
        }
        let Some(cols) = &columns else {
            return Err(GpuError::SmiCsv {
                line: line_no,
                message: "expected a header line naming the columns, with `timestamp` and `index` (--format=csv, not csv,noheader)".into(),
            });
        };
        match parse_row(line, cols, &mut log.inventory) {
            Ok(row) => log.rows.push(row),
            Err(message) => log.errors.push(GpuError::SmiCsv {
                line: line_no,
                message,
            }),
        }
    }
    if columns.is_none() {
        return Err(GpuError::SmiCsv {
            line: 1,
            message: "no header line (`timestamp, index, ...`) found".into(),
        });
    }
    log.inventory.sort_by_key(|g| g.index);
    Ok(log)
}

fn parse_row(line: &str, cols: &[Column], inventory: &mut Vec<GpuInfo>) -> Result<SmiRow, String> {
    let cells: Vec<&str> = line.split(',').collect();
    if cells.len() != cols.len() {
        return Err(format!(
            "expected {} comma-separated values as in the header, found {}",
            cols.len(),
            cells.len()
        ));
    }
    let mut ts = None;
    let mut s = GpuSample::default();
    let mut info = GpuInfo::default();
    let mut index = None;
    for (col, cell) in cols.iter().zip(&cells) {
        let num = || number(cell).map(|(v, _)| v);
        let mem = || {
            number(cell).and_then(|(v, unit)| {
                let unit = unit.or(col.unit.as_deref()).unwrap_or("MiB");
                bytes_per(unit).map(|b| (v * b) as u64)
            })
        };
        let text = || bare(cell).map(str::to_string);
        match col.field {
            Field::Timestamp => {
                ts = Some(parse_timestamp(cell).ok_or_else(|| {
                    format!(
                        "expected a timestamp like `2026/11/22 14:03:12.101`, found `{}`",
                        cell.trim()
                    )
                })?);
            }
            Field::Index => {
                index = Some(
                    cell.trim()
                        .parse::<u32>()
                        .map_err(|_| format!("expected a GPU index, found `{}`", cell.trim()))?,
                );
            }
            Field::Name => info.name = text(),
            Field::Uuid => info.uuid = text(),
            Field::PciBusId => info.pci_bus_id = text(),
            Field::Serial => info.serial = text(),
            Field::Driver => info.driver = text(),
            Field::UtilGpu => s.util_gpu_pct = num(),
            Field::UtilMem => s.util_mem_pct = num(),
            Field::MemUsed => s.mem_used_bytes = mem(),
            Field::MemTotal => {
                s.mem_total_bytes = mem();
                info.mem_total_bytes = s.mem_total_bytes;
            }
            Field::Power => s.power_w = s.power_w.or_else(num),
            Field::PowerLimit => info.power_limit_w = num(),
            Field::SmClock => s.sm_clock_mhz = num().map(|v| v as u32),
            Field::MemClock => s.mem_clock_mhz = num().map(|v| v as u32),
            Field::MaxSmClock => info.max_sm_clock_mhz = num().map(|v| v as u32),
            Field::MaxMemClock => info.max_mem_clock_mhz = num().map(|v| v as u32),
            Field::Temp => s.temp_c = num(),
            Field::Reasons => {
                s.throttle_reasons = bare(cell).and_then(|c| {
                    u64::from_str_radix(c.trim_start_matches("0x").trim_start_matches("0X"), 16)
                        .ok()
                });
            }
            Field::Other => {}
        }
    }
    let (Some(naive_unix_s), Some(index)) = (ts, index) else {
        return Err("a row without timestamp or index".into());
    };
    s.gpu_index = index;
    if !inventory.iter().any(|g| g.index == index) {
        info.index = index;
        inventory.push(info);
    }
    Ok(SmiRow {
        naive_unix_s,
        sample: s,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/nvidia-smi")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn timestamps_are_naive_utc_seconds() {
        // 2026-11-22T14:03:12.101Z
        assert_eq!(
            parse_timestamp("2026/11/22 14:03:12.101"),
            Some(1_795_356_192.101)
        );
        assert_eq!(parse_timestamp("1970/01/01 00:00:00.000"), Some(0.0));
        assert_eq!(
            parse_timestamp("2024/02/29 00:00:00"),
            Some(1_709_164_800.0)
        );
        assert_eq!(parse_timestamp("2026/13/01 00:00:00"), None);
        assert_eq!(parse_timestamp("yesterday"), None);
        // Found by fuzzing: a year this large overflowed the day count (a panic in a debug
        // build, a wrong instant in release); negative hours and minutes passed the check.
        assert_eq!(
            parse_timestamp("2049638230412170674/11/22 14:03:12.501"),
            None
        );
        assert_eq!(parse_timestamp("10000/01/01 00:00:00"), None);
        assert_eq!(parse_timestamp("2026/11/22 -1:03:12"), None);
        assert_eq!(parse_timestamp("2026/11/22 14:-3:12"), None);
        assert_eq!(
            parse_timestamp("9999/12/31 23:59:59"),
            Some(253_402_300_799.0)
        );
    }

    #[test]
    fn log_with_units_and_without_give_the_same_samples() {
        let a = parse_nvidia_smi_csv(&fixture("h100x2-units-lms100.csv")).expect("units");
        let b = parse_nvidia_smi_csv(&fixture("h100x2-nounits-lms100.csv")).expect("nounits");
        assert!(a.errors.is_empty(), "{:?}", a.errors);
        assert_eq!(a, b);
        assert_eq!(a.rows.len(), 24);
        assert_eq!(a.inventory.len(), 2);
        let g = &a.inventory[0];
        assert_eq!(g.name.as_deref(), Some("NVIDIA H100 80GB HBM3"));
        assert_eq!(g.driver.as_deref(), Some("550.54.15"));
        assert_eq!(g.power_limit_w, Some(700.0));
        assert_eq!(g.max_sm_clock_mhz, Some(1980));
        assert_eq!(g.mem_total_bytes, Some(81_559 * 1024 * 1024));
        let first = &a.rows[0];
        assert_eq!(first.sample.gpu_index, 0);
        assert_eq!(first.sample.mem_used_bytes, Some(75_870 * 1024 * 1024));
        assert_eq!(first.sample.power_w, Some(71.12));
        assert_eq!(first.sample.sm_clock_mhz, Some(1980));
        assert_eq!(first.sample.temp_c, Some(58.0));
        assert_eq!(first.sample.throttle_reasons, Some(0));
        assert_eq!(first.sample.energy_j, None);
        // Tick 5, GPU 1: `[N/A]` power is missing, not zero.
        let na = &a.rows[11];
        assert_eq!(na.sample.gpu_index, 1);
        assert_eq!(na.sample.power_w, None);
        assert_eq!(na.sample.util_gpu_pct, Some(100.0));
        // GPU 0 from tick 8: clock drop under the SW power cap.
        let capped = &a.rows[16];
        assert_eq!(capped.sample.sm_clock_mhz, Some(1755));
        assert_eq!(capped.sample.throttle_reasons, Some(4));
        assert!((a.rows[2].naive_unix_s - first.naive_unix_s - 0.1).abs() < 1e-6);
    }

    #[test]
    fn bad_rows_are_located_and_headers_required() {
        let text = "timestamp, index, utilization.gpu [%]\n\
            2026/11/22 14:00:00.000, 0, 5 %\n\
            2026/11/22 14:00:00.100, x, 5 %\n\
            2026/11/22 14:00:00.200, 0\n\
            2026/11/22 14:00:00.300, 0, [Not Supported]\n";
        let log = parse_nvidia_smi_csv(text).expect("parses");
        assert_eq!(log.rows.len(), 2);
        assert_eq!(log.rows[1].sample.util_gpu_pct, None);
        let lines: Vec<String> = log.errors.iter().map(ToString::to_string).collect();
        assert!(
            lines[0].contains("line 3") && lines[0].contains("GPU index"),
            "{lines:?}"
        );
        assert!(lines[1].contains("line 4"), "{lines:?}");
        assert!(parse_nvidia_smi_csv("2026/11/22 14:00:00, 0, 5\n").is_err());
        assert!(parse_nvidia_smi_csv("timestamp, name\n").is_err());
    }

    #[test]
    fn a_header_with_columns_in_any_order_is_read_by_name() {
        // `--query-gpu=name,power.draw,index,timestamp,pci.bus_id` (timestamp not first).
        let text = "name, power.draw [W], index, timestamp, pci.bus_id\n\
            NVIDIA H100 80GB HBM3, 612.30 W, 1, 2026/11/22 14:00:00.000, 00000000:19:00.0\n";
        let log = parse_nvidia_smi_csv(text).expect("parses");
        assert!(log.errors.is_empty(), "{:?}", log.errors);
        let row = &log.rows[0];
        assert_eq!((row.sample.gpu_index, row.sample.power_w), (1, Some(612.3)));
        assert_eq!(
            row.naive_unix_s,
            parse_timestamp("2026/11/22 14:00:00.000").unwrap()
        );
        assert_eq!(
            log.inventory[0].pci_bus_id.as_deref(),
            Some("00000000:19:00.0")
        );
        // A header still needs both columns, wherever they are.
        let err = parse_nvidia_smi_csv("name, index\nH100, 0\n").unwrap_err();
        assert!(err.to_string().contains("no `timestamp` column"), "{err}");
    }
}
