//! The search during a run: reads the run back from the recording after a step (the writer
//! has committed it) and replays the search over its analysis, on a blocking thread so the
//! runtime's samplers keep their ticks. What the run does next is the replay's `next_bs`.

use std::path::PathBuf;

use anyhow::Context;

use ceiling_reports::{AnalysisOptions, analyze};

use crate::store::Store;

use super::{SearchReport, SearchSettings, replay};

/// Where a running search reads its measurements from.
#[derive(Debug, Clone)]
pub struct StepMeter {
    pub db: PathBuf,
    pub run_id: i64,
    pub dp: u32,
}

impl StepMeter {
    /// The search over what the recording holds now. The caller flushes the writer first.
    pub async fn replay(&self, settings: &SearchSettings) -> anyhow::Result<SearchReport> {
        let meter = self.clone();
        let settings = settings.clone();
        tokio::task::spawn_blocking(move || meter.replay_now(&settings))
            .await
            .context("the search's analysis thread")?
    }

    fn replay_now(&self, settings: &SearchSettings) -> anyhow::Result<SearchReport> {
        let store = Store::open(&self.db)
            .with_context(|| format!("reopening {} for the search", self.db.display()))?;
        let mut rec = store.load_recording(self.run_id)?;
        rec.dp = Some(self.dp);
        let opts = AnalysisOptions {
            dp: Some(self.dp),
            ..AnalysisOptions::default()
        };
        let a = analyze(&rec, &opts)?;
        Ok(replay(settings, &rec.steps, &a.steps, &a.timings))
    }
}
