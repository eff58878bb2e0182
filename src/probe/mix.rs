//! Each request's lengths under the run's length mix ([`crate::config::LengthMix`]): fixed, a
//! seeded uniform draw around the step's lengths, or the next entry of a dataset (its order
//! shuffled once by the seed), with the entry's text where the run sends it
//! (`--dataset-prompts text`). Request `n` of a step always gets the same entry for the same
//! seed. Pure.

use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::config::rate::uniform_bounds;

/// Draws the lengths of the run's requests.
#[derive(Debug, Clone)]
pub enum LengthPlan {
    Fixed,
    Uniform {
        range: f64,
        seed: u64,
    },
    /// A dataset's entries, shuffled.
    Dataset(Vec<Entry>),
}

/// One dataset entry: its `(input, output)` lengths and, where the run sends it, its prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub lengths: (u32, u32),
    pub text: Option<Arc<str>>,
}

impl LengthPlan {
    /// A dataset's entries in a seeded order.
    pub fn dataset(mut entries: Vec<Entry>, seed: u64) -> LengthPlan {
        entries.shuffle(&mut SmallRng::seed_from_u64(seed));
        LengthPlan::Dataset(entries)
    }

    /// The dataset entry of request `n` of step `step`: steps continue through the set rather
    /// than all replaying its start.
    fn entry(entries: &[Entry], step: u32, n: u64) -> Option<&Entry> {
        entries.get((n as usize + step as usize * 7919) % entries.len().max(1))
    }

    /// The prompt text of request `n` of step `step`: its dataset entry's, where the run sends
    /// the dataset's text; `None` for a prompt made to length.
    pub fn text(&self, step: u32, n: u64) -> Option<Arc<str>> {
        match self {
            LengthPlan::Dataset(entries) => Self::entry(entries, step, n)?.text.clone(),
            _ => None,
        }
    }

    /// The `(input, output)` of request `n` of step `step` whose base lengths are `base`.
    pub fn lengths(&self, step: u32, n: u64, base: (u32, u32)) -> (u32, u32) {
        match self {
            LengthPlan::Fixed => base,
            LengthPlan::Uniform { range, seed } => {
                let mut rng = SmallRng::seed_from_u64(
                    seed ^ (u64::from(step) << 40) ^ n.wrapping_mul(0xD1B5_4A32_D192_ED03),
                );
                let (ilo, ihi) = uniform_bounds(base.0, *range);
                let (olo, ohi) = uniform_bounds(base.1, *range);
                (
                    rng.random_range(ilo..=ihi),
                    rng.random_range(olo.max(2)..=ohi.max(2)),
                )
            }
            LengthPlan::Dataset(entries) => {
                Self::entry(entries, step, n).map_or(base, |e| e.lengths)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_lengths_stay_in_range_with_the_asked_mean() {
        let plan = LengthPlan::Uniform {
            range: 0.5,
            seed: 9,
        };
        let draws: Vec<(u32, u32)> = (0..20_000)
            .map(|n| plan.lengths(0, n, (512, 128)))
            .collect();
        assert!(
            draws
                .iter()
                .all(|&(i, o)| (256..=768).contains(&i) && (64..=192).contains(&o))
        );
        let mean_in = draws.iter().map(|d| f64::from(d.0)).sum::<f64>() / 20_000.0;
        assert!((mean_in - 512.0).abs() < 5.0, "{mean_in}");
        assert_eq!(
            plan.lengths(3, 17, (512, 128)),
            plan.lengths(3, 17, (512, 128))
        );
        assert_ne!(draws[0], draws[1]);
    }

    #[test]
    fn a_dataset_is_walked_in_a_seeded_order_and_fixed_is_the_base() {
        let entries: Vec<(u32, u32)> = (1..=50).map(|i| (i, i + 100)).collect();
        let plan = LengthPlan::dataset(
            entries
                .iter()
                .map(|&lengths| Entry {
                    lengths,
                    text: Some(format!("prompt of {} words", lengths.0).into()),
                })
                .collect(),
            4,
        );
        // The text goes with its lengths.
        let (i, _) = plan.lengths(0, 7, (1, 2));
        assert_eq!(
            plan.text(0, 7).as_deref(),
            Some(format!("prompt of {i} words").as_str())
        );
        assert_eq!(LengthPlan::Fixed.text(0, 7), None);
        let mut seen: Vec<(u32, u32)> = (0..50).map(|n| plan.lengths(0, n, (1, 2))).collect();
        assert_ne!(seen, entries, "shuffled");
        seen.sort_unstable();
        assert_eq!(seen, entries, "every entry once per pass");
        assert_eq!(LengthPlan::Fixed.lengths(2, 9, (64, 32)), (64, 32));
    }
}
