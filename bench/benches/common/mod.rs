//! What every micro-benchmark shares: short measurements, so the whole
//! `cargo bench -p clarion-bench` takes a few minutes on two cores.

use std::time::Duration;

use criterion::Criterion;

/// 20 samples over 2 s after a 0.5 s warm-up. Pass `--measurement-time`
/// or `--sample-size` after `--` for a steadier number.
pub(crate) fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}
