//! The moments of a set of chunk gaps (`Σ g`, `Σ g²`, count) and what the step timing reads
//! from them: the mean, the length-biased mean a window's edge falls in, the effective number
//! of gaps, and the acceptance's sampling noise over them. Pure.

/// `Σ g`, `Σ g²` and the count of finite gaps, added one at a time or taken from a slice.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct GapMoments {
    sum: f64,
    sum2: f64,
    n: u64,
}

impl GapMoments {
    /// Adds a gap; a non-finite one is left out.
    pub(crate) fn add(&mut self, g: f64) {
        if g.is_finite() {
            self.sum += g;
            self.sum2 += g * g;
            self.n += 1;
        }
    }

    pub(crate) fn of(gaps: &[f64]) -> GapMoments {
        let mut m = GapMoments::default();
        gaps.iter().for_each(|g| m.add(*g));
        m
    }

    pub(crate) fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The mean length of the gap a random instant falls in: `Σ g² / Σ g` (length-biased).
    pub(crate) fn at_edge(&self) -> Option<f64> {
        (self.sum > 0.0).then(|| self.sum2 / self.sum)
    }

    /// `(Σ g)² / Σ g²`: as many equal gaps would weigh the mean as evenly.
    pub(crate) fn n_eff(&self) -> Option<f64> {
        (self.sum2 > 0.0).then(|| self.sum * self.sum / self.sum2)
    }
}

/// The relative 2σ of `Σ gaps / Σ tokens × MTP` against `Σ gaps / chunks` over gaps of
/// effective number `n_eff` (`(Σ g)² / Σ g²`), each chunk one engine step of a speculative
/// accept length whose variance is taken as `MTP − 1` (the accepted drafts as a Poisson count;
/// 3 drafts at acceptance 0.7 give 1.54 against 1.53): `2 √(MTP − 1) / (MTP √n_eff)`. `None`
/// without speculative decoding (every chunk one token).
pub(crate) fn acceptance_noise(mtp: f64, n_eff: Option<f64>) -> Option<f64> {
    let n = n_eff.filter(|n| *n > 0.0)?;
    (mtp > 1.0).then(|| 2.0 * (mtp - 1.0).sqrt() / (mtp * n.sqrt()))
}
