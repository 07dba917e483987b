//! Seeded choices: which of a service's containers a fault hits.
//!
//! The generator is SplitMix64, written out here rather than taken from `rand`: a seed printed in
//! a report must replay the same choices with any later firedrill, and `rand` does not promise
//! its generators' output across versions.

use crate::scenario::model::Target;

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and fine for picking targets.
#[derive(Debug, Clone)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRng { state: seed }
    }

    /// The generator of one step: the run's seed mixed with the step's index, so the choices of a
    /// step do not depend on what ran before it or beside it (`parallel`).
    pub fn for_step(seed: u64, index: usize) -> Self {
        let mut mixer = SeededRng::new(seed ^ (index as u64).wrapping_mul(0xA076_1D64_78BD_642F));
        SeededRng::new(mixer.next_u64())
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0), without modulo bias worth speaking of for the
    /// handful of replicas a service has (Lemire's multiply-shift).
    pub fn below(&mut self, bound: usize) -> usize {
        ((u128::from(self.next_u64()) * bound as u128) >> 64) as usize
    }
}

/// The replicas a `target` picks, in the order of `replicas`: `all` takes every one, `one` one
/// chosen with `rng`, `N` N distinct ones (every one when there are at most N).
pub fn select_targets(replicas: &[String], target: Target, rng: &mut SeededRng) -> Vec<String> {
    let wanted = match target {
        Target::All => replicas.len(),
        Target::One => 1,
        Target::Count(count) => count,
    };
    if wanted >= replicas.len() {
        return replicas.to_vec();
    }
    // A partial Fisher-Yates shuffle of the positions, then back to the replicas' own order.
    let mut positions: Vec<usize> = (0..replicas.len()).collect();
    for i in 0..wanted {
        let j = i + rng.below(positions.len() - i);
        positions.swap(i, j);
    }
    let mut chosen = positions[..wanted].to_vec();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| replicas[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicas(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("billing.{i}")).collect()
    }

    #[test]
    fn all_takes_everything_and_counts_beyond_the_replicas_too() {
        let mut rng = SeededRng::new(7);
        assert_eq!(select_targets(&replicas(3), Target::All, &mut rng), replicas(3));
        assert_eq!(select_targets(&replicas(3), Target::Count(5), &mut rng), replicas(3));
        assert_eq!(select_targets(&replicas(1), Target::One, &mut rng), replicas(1));
        assert!(select_targets(&[], Target::One, &mut rng).is_empty());
    }

    #[test]
    fn the_same_seed_replays_the_same_choices() {
        for seed in [0, 1, 42, u64::MAX] {
            let pick = |index| {
                let mut rng = SeededRng::for_step(seed, index);
                (
                    select_targets(&replicas(5), Target::One, &mut rng),
                    select_targets(&replicas(5), Target::Count(2), &mut rng),
                )
            };
            assert_eq!(pick(3), pick(3), "seed {seed}");
        }
    }

    #[test]
    fn choices_are_distinct_ordered_and_vary_with_the_seed() {
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..200 {
            let mut rng = SeededRng::for_step(seed, 0);
            let chosen = select_targets(&replicas(5), Target::Count(2), &mut rng);
            assert_eq!(chosen.len(), 2);
            assert!(chosen[0] < chosen[1], "{chosen:?}");
            seen.insert(chosen);
        }
        // All 10 pairs of 5 turn up over 200 seeds.
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn steps_draw_independently() {
        let firsts: std::collections::BTreeSet<u64> =
            (0..50).map(|index| SeededRng::for_step(42, index).next_u64()).collect();
        assert_eq!(firsts.len(), 50);
    }

    #[test]
    fn splitmix_matches_its_reference_output() {
        // First outputs of the reference implementation seeded with 1234567.
        let mut rng = SeededRng::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }
}
