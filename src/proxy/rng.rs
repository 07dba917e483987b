//! The proxy's seeded randomness: SplitMix64, derived per (connection, toxic) so that the same seed
//! and the same connection order give the same decisions, whatever the timing between connections.

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, and good enough for fault decisions.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

impl Rng {
    /// A generator for one purpose: `salt` separates the toxicity roll from a stage's own draws.
    pub(crate) fn derive(seed: u64, conn: u64, toxic: u64, salt: u64) -> Rng {
        let mut rng = Rng(seed);
        for part in [conn, toxic, salt] {
            rng.0 ^= part.wrapping_mul(GOLDEN);
            rng.next_u64();
        }
        rng
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p` (`p >= 1` always, `p <= 0` never).
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Uniform in `[0, n]` (inclusive).
    pub(crate) fn up_to(&mut self, n: u64) -> u64 {
        if n == u64::MAX {
            return self.next_u64();
        }
        ((u128::from(self.next_u64()) * u128::from(n + 1)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_give_the_same_stream_and_different_ones_differ() {
        let a: Vec<u64> = (0..4).map(|_| Rng::derive(7, 1, 2, 0).next_u64()).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(Rng::derive(7, 1, 2, 0).next_u64(), Rng::derive(7, 2, 1, 0).next_u64());
        assert_ne!(Rng::derive(7, 1, 2, 0).next_u64(), Rng::derive(8, 1, 2, 0).next_u64());
        assert_ne!(Rng::derive(7, 1, 2, 0).next_u64(), Rng::derive(7, 1, 2, 1).next_u64());
    }

    #[test]
    fn chance_and_ranges_hold_their_bounds() {
        let mut rng = Rng::derive(1, 2, 3, 4);
        let hits = (0..10_000).filter(|_| rng.chance(0.3)).count();
        assert!((2_500..3_500).contains(&hits), "{hits} of 10000 at p=0.3");
        assert!((0..1000).all(|_| rng.chance(1.0)));
        assert!((0..1000).all(|_| !rng.chance(0.0)));
        assert!((0..1000).all(|_| rng.up_to(5) <= 5));
        assert!((0..1000).any(|_| rng.up_to(5) == 5));
        assert!((0..1000).all(|_| rng.up_to(0) == 0));
    }
}
