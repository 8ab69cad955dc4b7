//! A small deterministic random generator (SplitMix64): the same seed always builds the same city and stream.

#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len()))
    }

    /// A number in `[0, 1)`, from the top 53 bits.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An index into the weights `table` was made from by `cumulative`, drawn by weight (0 when all
    /// weights are zero).
    pub fn draw(&mut self, table: &[u64]) -> usize {
        let total = table.last().copied().unwrap_or(0);
        if total == 0 {
            return 0;
        }
        let target = self.next_u64() % total;
        table.partition_point(|&c| c <= target).min(table.len() - 1)
    }
}

/// Running totals of `weights`, for `Rng::draw`.
pub fn cumulative(weights: impl IntoIterator<Item = u64>) -> Vec<u64> {
    let mut total = 0;
    weights
        .into_iter()
        .map(|w| {
            total += w;
            total
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_values_stay_in_range() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..1000 {
            assert_eq!(a.next_u64(), b.next_u64());
            let (x, y) = (a.below(13), b.below(13));
            assert_eq!(x, y);
            assert!(x < 13);
        }
        let hits = (0..10_000).filter(|_| a.chance(30)).count();
        assert!((2_500..3_500).contains(&hits), "{hits}");
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }
}
