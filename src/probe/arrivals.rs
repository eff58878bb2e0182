//! The open loop's arrival schedule: when each request of a rate step is due, as offsets in
//! seconds from the step's start. Inter-arrival times are gamma-distributed with shape
//! `burstiness` and scale `1 / (rate × burstiness)`, as vLLM's `bench serve` draws them: the
//! mean gap is `1 / rate` whatever the shape; shape 1 is a Poisson process, below 1 burstier,
//! above 1 more regular. An `inf` rate puts every arrival at 0. Seeded: the same seed and
//! step give the same schedule. Pure; the runner ([`super::open_loop`]) keeps the schedule.

use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Gamma};

use crate::config::Rate;

/// How many arrivals a step has: a fixed count, or as many as fall before a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Extent {
    Count(u32),
    /// Arrivals due before this many seconds.
    Until(f64),
}

/// The arrival offsets of one step, ascending. `None` when the shape or rate cannot make a
/// gamma distribution (config checks both are positive and finite).
pub fn schedule(rate: Rate, burstiness: f64, extent: Extent, seed: u64) -> Option<Vec<f64>> {
    let rps = match rate {
        Rate::Inf => {
            let n = match extent {
                Extent::Count(n) => n,
                Extent::Until(_) => 0,
            };
            return Some(vec![0.0; n as usize]);
        }
        Rate::PerSecond(r) => r,
    };
    let gamma = Gamma::new(burstiness, 1.0 / (rps * burstiness)).ok()?;
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut out = Vec::new();
    // The first arrival is at the step's start, as vLLM's bench sends its first request at
    // once; every later one after a drawn gap.
    let mut t = 0.0;
    loop {
        match extent {
            Extent::Count(n) if out.len() >= n as usize => break,
            Extent::Until(end) if t >= end => break,
            _ => {}
        }
        out.push(t);
        t += gamma.sample(&mut rng);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gaps(s: &[f64]) -> Vec<f64> {
        s.windows(2).map(|w| w[1] - w[0]).collect()
    }

    fn mean_var(v: &[f64]) -> (f64, f64) {
        let n = v.len() as f64;
        let m = v.iter().sum::<f64>() / n;
        (
            m,
            v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0),
        )
    }

    #[test]
    fn poisson_gaps_have_the_asked_mean_and_an_exponential_spread() {
        let s = schedule(Rate::PerSecond(50.0), 1.0, Extent::Count(40_000), 7).unwrap();
        assert_eq!(s.len(), 40_000);
        assert_eq!(s[0], 0.0);
        let (m, var) = mean_var(&gaps(&s));
        // Mean 1/50 s; an exponential's variance is the mean squared. 40k draws: the mean is
        // within 1 % (its standard error is 0.5 %).
        assert!((m - 0.02).abs() / 0.02 < 0.01, "{m}");
        assert!((var / (m * m) - 1.0).abs() < 0.05, "{var}");
    }

    #[test]
    fn burstiness_is_the_gamma_shape_and_keeps_the_mean() {
        // Coefficient of variation² = 1 / shape: 0.25 → 4, 4 → 0.25.
        for (shape, cv2) in [(0.25, 4.0), (4.0, 0.25)] {
            let s = schedule(Rate::PerSecond(10.0), shape, Extent::Count(40_000), 3).unwrap();
            let (m, var) = mean_var(&gaps(&s));
            assert!((m - 0.1).abs() / 0.1 < 0.03, "shape {shape}: mean {m}");
            assert!(
                (var / (m * m) - cv2).abs() / cv2 < 0.1,
                "shape {shape}: {var}"
            );
        }
    }

    #[test]
    fn a_duration_bounds_the_arrivals_and_inf_sends_all_at_once() {
        let s = schedule(Rate::PerSecond(100.0), 1.0, Extent::Until(30.0), 1).unwrap();
        assert!(s.iter().all(|t| *t < 30.0));
        assert!(
            (s.len() as f64 - 3000.0).abs() < 3.0 * 3000f64.sqrt(),
            "{}",
            s.len()
        );
        assert!(s.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            schedule(Rate::Inf, 1.0, Extent::Count(5), 1).unwrap(),
            [0.0; 5]
        );
        let again = schedule(Rate::PerSecond(100.0), 1.0, Extent::Until(30.0), 1).unwrap();
        assert_eq!(s, again, "seeded");
    }
}
