//! What the integration tests share: finding `../shared/data` (skip with a
//! printed reason on a fresh clone, fail in CI, where it must be present).

use std::path::{Path, PathBuf};

/// `../shared/data/<rel>` when `probe` (a file or folder inside it, "" for the
/// folder itself) exists. Otherwise: under `CI` a failure naming the path, so
/// CI never skips silently; elsewhere `None` after printing why the test skips.
#[allow(dead_code)] // not every test crate that includes this module uses it
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

/// Twelve synthetic identities of six 3x32x32 images (data seed 3): the small
/// data set of the training-loop tests.
#[allow(dead_code)] // not every test crate that includes this module uses it
pub fn small_synthetic_data() -> regularface::data::source::PreparedData {
    let spec = regularface::data::source::DataSpec::Synthetic {
        identities: 12,
        images_per_identity: 6,
        test_identities: 20,
        seed: 3,
    };
    regularface::data::source::prepare(&spec, (3, 32, 32)).unwrap()
}
