//! A log-linear latency histogram in the style of HdrHistogram: fixed
//! memory, constant-time recording, and percentiles within 0.8 %.
//!
//! Values are nanoseconds. Below 128 ns every value has its own bucket;
//! above, each power of two `[2^e, 2^(e+1))` is cut into 128 equal buckets,
//! so a bucket is at most 1/128 of the values it holds wide. Values above
//! [`MAX_VALUE`] (about 137 s) land in the top bucket; the exact maximum is
//! kept aside, so `max` is never rounded.

/// Bits of linear resolution inside each power of two.
const SUB_BITS: u32 = 7;
/// Buckets per power of two.
const SUB_COUNT: usize = 1 << SUB_BITS;
/// Highest power of two tracked: `2^37 - 1` ns is about 137 s.
const TOP_EXPONENT: u32 = 36;
/// The linear range, then one run of `SUB_COUNT` buckets per power of two.
const BUCKETS: usize = (TOP_EXPONENT - SUB_BITS + 2) as usize * SUB_COUNT;
/// Largest value told apart from the others (larger ones are clamped).
const MAX_VALUE: u64 = (1 << (TOP_EXPONENT + 1)) - 1;

/// Counts of nanosecond values in log-linear buckets.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Box<[u64]>,
    count: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            count: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count)
            .field("min", &self.min())
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Histogram {
    /// Records one value in nanoseconds.
    pub(crate) fn record(&mut self, nanos: u64) {
        self.counts[index_of(nanos)] += 1;
        self.count += 1;
        self.sum += u128::from(nanos);
        self.min = self.min.min(nanos);
        self.max = self.max.max(nanos);
    }

    /// Adds every value of `other`.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts.iter()) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// How many values were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.count
    }

    /// The smallest value, exact (0 when empty).
    pub(crate) fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min
        }
    }

    /// The largest value, exact (0 when empty).
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// The arithmetic mean (0 when empty).
    pub(crate) fn mean(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.sum as f64 / self.count as f64
    }

    /// The value at `percentile` (0 to 100): the smallest bucket value `v`
    /// such that at least that share of the values are `<= v`, reported as
    /// the bucket's upper edge (never understated) but clamped to the exact
    /// minimum and maximum seen; the lowest and highest ranks are the exact
    /// minimum and maximum. 0 when empty.
    pub(crate) fn percentile(&self, percentile: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let share = percentile.clamp(0.0, 100.0) / 100.0;
        // The rank of the value, 1-based: at least the first one. The
        // epsilon keeps `0.9 * 10_000` from rounding up to rank 9001.
        let rank = ((share * self.count as f64 - 1e-9).ceil() as u64).clamp(1, self.count);
        // The first and last ranks are known exactly.
        if rank == 1 {
            return self.min;
        }
        if rank == self.count {
            return self.max;
        }
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return highest_in(index).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

/// The bucket holding `value`.
fn index_of(value: u64) -> usize {
    let value = value.min(MAX_VALUE);
    if value < SUB_COUNT as u64 {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros();
    let sub = (value >> (exponent - SUB_BITS)) as usize - SUB_COUNT;
    (exponent - SUB_BITS + 1) as usize * SUB_COUNT + sub
}

/// The smallest value that falls in bucket `index`.
fn lowest_in(index: usize) -> u64 {
    if index < SUB_COUNT {
        return index as u64;
    }
    let run = (index / SUB_COUNT) as u32;
    let sub = (index % SUB_COUNT) as u64;
    let shift = run - 1;
    (SUB_COUNT as u64 + sub) << shift
}

/// The largest value that falls in bucket `index`.
fn highest_in(index: usize) -> u64 {
    if index + 1 >= BUCKETS {
        return MAX_VALUE;
    }
    lowest_in(index + 1) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        for value in 0..SUB_COUNT as u64 {
            let index = index_of(value);
            assert_eq!(lowest_in(index), value);
            assert_eq!(highest_in(index), value);
        }
    }

    #[test]
    fn buckets_tile_the_range_without_gaps() {
        for index in 0..BUCKETS - 1 {
            assert_eq!(
                highest_in(index) + 1,
                lowest_in(index + 1),
                "bucket {index}"
            );
            assert_eq!(index_of(lowest_in(index)), index);
            assert_eq!(index_of(highest_in(index)), index);
        }
        assert_eq!(index_of(MAX_VALUE), BUCKETS - 1);
        assert_eq!(index_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn every_bucket_is_within_one_percent_of_its_values() {
        for index in SUB_COUNT..BUCKETS {
            let (low, high) = (lowest_in(index), highest_in(index));
            let relative = (high - low) as f64 / low as f64;
            assert!(relative < 0.008, "bucket {index}: {low}..={high}");
        }
    }

    #[test]
    fn percentiles_of_one_to_ten_thousand() {
        let mut histogram = Histogram::default();
        for value in 1..=10_000u64 {
            histogram.record(value * 1_000);
        }
        assert_eq!(histogram.count(), 10_000);
        for (percentile, exact) in [(50.0, 5_000_000), (90.0, 9_000_000), (99.0, 9_900_000)] {
            let got = histogram.percentile(percentile);
            let error = (got as f64 - exact as f64).abs() / exact as f64;
            assert!(got >= exact, "p{percentile}: {got} understates {exact}");
            assert!(error < 0.008, "p{percentile}: {got} vs {exact}");
        }
        assert_eq!(histogram.percentile(100.0), 10_000_000);
        assert_eq!(histogram.percentile(0.0), 1_000);
        assert_eq!(histogram.max(), 10_000_000);
        assert_eq!(histogram.min(), 1_000);
        assert!((histogram.mean() - 5_000_500.0).abs() < 1.0);
    }

    #[test]
    fn a_tail_outlier_shows_at_p999_not_p99() {
        let mut histogram = Histogram::default();
        for _ in 0..998 {
            histogram.record(50_000);
        }
        histogram.record(2_000_000);
        histogram.record(2_000_000);
        let p99 = histogram.percentile(99.0);
        assert!((50_000..50_400).contains(&p99), "{p99}");
        assert_eq!(histogram.percentile(99.9), 2_000_000);
        assert_eq!(histogram.max(), 2_000_000);
    }

    #[test]
    fn merge_adds_counts_and_keeps_extremes() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        b.record(1_000_000);
        b.record(20);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.min(), 10);
        assert_eq!(a.max(), 1_000_000);
        assert_eq!(a.percentile(50.0), 20);
    }

    #[test]
    fn empty_and_huge_values() {
        let mut histogram = Histogram::default();
        assert_eq!(histogram.percentile(99.0), 0);
        assert_eq!(histogram.min(), 0);
        histogram.record(u64::MAX);
        assert_eq!(histogram.max(), u64::MAX);
        // Clamped into the top bucket, but the exact extremes are kept.
        assert_eq!(histogram.percentile(50.0), u64::MAX);
        histogram.record(MAX_VALUE + 5);
        assert_eq!(histogram.percentile(0.0), MAX_VALUE + 5);
    }
}
