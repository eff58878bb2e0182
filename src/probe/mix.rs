//! Each request's lengths under the run's length mix ([`crate::config::LengthMix`]): fixed, a
//! seeded uniform draw around the step's lengths, or the next entry of a dataset (its order
//! shuffled once by the seed). Request `n` of a step always gets the same lengths for the same
//! seed. Pure.

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
    /// A dataset's `(input, output)` entries, shuffled.
    Dataset(Vec<(u32, u32)>),
}

impl LengthPlan {
    /// A dataset's entries in a seeded order.
    pub fn dataset(mut lengths: Vec<(u32, u32)>, seed: u64) -> LengthPlan {
        lengths.shuffle(&mut SmallRng::seed_from_u64(seed));
        LengthPlan::Dataset(lengths)
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
                // Steps continue through the set rather than all replaying its start.
                let at = (n as usize + step as usize * 7919) % entries.len().max(1);
                entries.get(at).copied().unwrap_or(base)
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
        let plan = LengthPlan::dataset(entries.clone(), 4);
        let mut seen: Vec<(u32, u32)> = (0..50).map(|n| plan.lengths(0, n, (1, 2))).collect();
        assert_ne!(seen, entries, "shuffled");
        seen.sort_unstable();
        assert_eq!(seen, entries, "every entry once per pass");
        assert_eq!(LengthPlan::Fixed.lengths(2, 9, (64, 32)), (64, 32));
    }
}
