//! Replays every committed fuzz input as an ordinary test: the seeds and
//! minimised corpus under `fuzz/corpus/<target>/`, and the inputs that once
//! found a bug under `fuzz/regressions/<target>/`. A target body panics on
//! any broken invariant, so a regression fails here under stable `cargo test`.

use std::path::{Path, PathBuf};

/// The inputs in `dir`, sorted; none if it does not exist.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a readable folder").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `target` on every input of `dir`: how many ran, and the ones
/// that failed.
fn replay(dir: &Path, target: fn(&[u8])) -> (usize, Vec<PathBuf>) {
    let files = inputs(dir);
    let failed = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("a readable input");
            std::panic::catch_unwind(|| target(&data)).is_err()
        })
        .cloned()
        .collect();
    (files.len(), failed)
}

fn fuzz_dir(folder: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(folder)
        .join(name)
}

/// Every target has seeds (an empty corpus would test nothing), and each
/// one passes on every corpus and regression input.
#[test]
fn every_committed_input_passes_its_target() {
    for (name, target) in clarion_fuzz::TARGETS {
        let (seeds, failed) = replay(&fuzz_dir("corpus", name), target);
        assert!(
            seeds >= 10,
            "{name}: only {seeds} inputs in fuzz/corpus/{name}"
        );
        assert_eq!(
            failed,
            Vec::<PathBuf>::new(),
            "{name} fails on these corpus inputs"
        );
        let (_, failed) = replay(&fuzz_dir("regressions", name), target);
        assert_eq!(
            failed,
            Vec::<PathBuf>::new(),
            "{name} fails on these regressions"
        );
    }
}

/// The replay can fail: an input that breaks an invariant is reported.
#[test]
fn a_failing_input_is_reported() {
    fn fails_on_x(data: &[u8]) {
        assert!(!data.contains(&b'x'), "a broken invariant");
    }
    let dir = std::env::temp_dir().join(format!("clarion-fuzz-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp folder");
    std::fs::write(dir.join("good"), b"abc").expect("a temp file");
    std::fs::write(dir.join("bad"), b"xyz").expect("a temp file");
    let (ran, failed) = replay(&dir, fails_on_x);
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!((ran, failed), (2, vec![dir.join("bad")]));
}
