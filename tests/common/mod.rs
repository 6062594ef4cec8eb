//! What the integration tests share: finding `../shared/data` (skip with a
//! printed reason on a fresh clone, fail in CI, where it must be present).

use std::path::{Path, PathBuf};

/// `../shared/data/<rel>` when `probe` (a file or folder inside it, "" for the
/// folder itself) exists. Otherwise: under `CI` a failure naming the path, so
/// CI never skips silently; elsewhere `None` after printing why the test skips.
pub fn shared_data(rel: &str, probe: &str) -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data")
        .join(rel);
    if dir.join(probe).exists() {
        return Some(dir);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing and CI is set: CI must run the tests that need the shared data",
            dir.join(probe).display()
        );
    }
    println!(
        "skipped: {} not found (it is in the shared data folder beside the repository on CI)",
        dir.join(probe).display()
    );
    None
}
