//! The search for the highest rate a receiver records with zero loss
//! (RFC 2544's throughput search): halve from the maximum until a trial loses
//! nothing, then bisect between it and the last lossy rate.

/// What one trial at a rate showed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The rate the generator actually offered.
    pub offered_rate: f64,
    /// Whether every frame offered was recorded.
    pub lossless: bool,
}

/// How far the search goes.
#[derive(Debug, Clone, Copy)]
pub struct Search {
    /// Bisection steps once a lossless rate is found.
    pub steps: u32,
    /// The lowest rate tried.
    pub min_rate: f64,
}

impl Search {
    /// The highest offered rate recorded without loss, or `None` when even
    /// the lowest rate lost frames. `max` is the trial at the generator's
    /// maximum rate; `trial` runs one trial at the rate asked.
    pub fn run(
        &self,
        max: Outcome,
        mut trial: impl FnMut(f64) -> anyhow::Result<Outcome>,
    ) -> anyhow::Result<Option<f64>> {
        if max.lossless {
            return Ok(Some(max.offered_rate));
        }
        let mut hi = max.offered_rate;
        let mut lo = None;
        let mut best = None;
        let mut halvings = 0;
        while lo.is_none() && halvings < self.steps + 6 && hi / 2.0 >= self.min_rate {
            halvings += 1;
            let rate = hi / 2.0;
            let t = trial(rate)?;
            if t.lossless {
                lo = Some(rate);
                best = Some(t.offered_rate);
            } else {
                hi = rate;
            }
        }
        if let Some(mut low) = lo {
            for _ in 0..self.steps {
                let mid = (low + hi) / 2.0;
                let t = trial(mid)?;
                if t.lossless {
                    low = mid;
                    best = Some(t.offered_rate);
                } else {
                    hi = mid;
                }
            }
        }
        Ok(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receiver that loses frames above `limit`, offered exactly what is asked.
    fn receiver(
        limit: f64,
        tried: &mut Vec<f64>,
    ) -> impl FnMut(f64) -> anyhow::Result<Outcome> + '_ {
        move |rate| {
            tried.push(rate);
            Ok(Outcome {
                offered_rate: rate,
                lossless: rate <= limit,
            })
        }
    }

    const SEARCH: Search = Search {
        steps: 6,
        min_rate: 20_000.0,
    };

    /// The generator's maximum, with losses.
    fn lossy_max() -> Outcome {
        Outcome {
            offered_rate: 3_000_000.0,
            lossless: false,
        }
    }

    #[test]
    fn converges_below_the_limit_within_the_step_resolution() {
        let max = lossy_max();
        let mut tried = Vec::new();
        let best = SEARCH.run(max, receiver(700_000.0, &mut tried)).unwrap();
        let best = best.expect("a lossless rate exists");
        // 3M → 1.5M → 750k (lossy) → 375k (lossless), then 6 bisections of
        // [375k, 750k]: within 375k / 2^6 below the limit.
        assert!(best <= 700_000.0, "{best}");
        assert!(best >= 700_000.0 - 375_000.0 / 64.0, "{best}");
        assert_eq!(tried.len(), 3 + 6);
    }

    #[test]
    fn a_lossless_maximum_needs_no_search() {
        let max = Outcome {
            offered_rate: 2_500_000.0,
            lossless: true,
        };
        let mut tried = Vec::new();
        assert_eq!(
            SEARCH.run(max, receiver(0.0, &mut tried)).unwrap(),
            Some(2_500_000.0)
        );
        assert!(tried.is_empty());
    }

    #[test]
    fn stops_at_the_lowest_rate_when_everything_loses() {
        let max = lossy_max();
        let mut tried = Vec::new();
        assert_eq!(
            SEARCH.run(max, receiver(1_000.0, &mut tried)).unwrap(),
            None
        );
        assert!(tried.iter().all(|&r| r >= 20_000.0), "{tried:?}");
        assert!(!tried.is_empty());
    }
}
