//! Image folders (with corrupt files), MNIST IDX parsing, synthetic determinism.

mod common;

use regularface::data::images::load_folder;
use regularface::data::mnist::parse_idx;
use regularface::data::synthetic::{generate, make_pairs, SyntheticConfig};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("regularface-data-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write_images(dir: &Path) {
    let img = image::RgbImage::from_fn(40, 50, |x, y| {
        image::Rgb([(x * 6) as u8, (y * 5) as u8, 128])
    });
    for (person, ext) in [("alice", "png"), ("bob", "bmp"), ("carol", "jpg")] {
        std::fs::create_dir_all(dir.join(person)).unwrap();
        for i in 0..3 {
            img.save(dir.join(person).join(format!("{i}.{ext}")))
                .unwrap();
        }
    }
    let grey = image::GrayImage::from_fn(30, 30, |x, _| image::Luma([(x * 8) as u8]));
    std::fs::create_dir_all(dir.join("dave")).unwrap();
    grey.save(dir.join("dave").join("0.pgm")).unwrap();
    // corrupt: a truncated JPEG, garbage with a PNG name, an empty BMP
    let jpg = std::fs::read(dir.join("carol").join("0.jpg")).unwrap();
    std::fs::write(
        dir.join("carol").join("truncated.jpg"),
        &jpg[..jpg.len() / 3],
    )
    .unwrap();
    std::fs::write(dir.join("alice").join("garbage.png"), b"this is not a png").unwrap();
    std::fs::write(dir.join("bob").join("empty.bmp"), b"").unwrap();
    std::fs::write(
        dir.join("bob").join("notes.txt"),
        b"ignored: not an image name",
    )
    .unwrap();
}

#[test]
fn image_folder_loads_every_format_and_skips_corrupt_files() {
    let dir = scratch("folder");
    write_images(&dir);
    let (set, skipped) = load_folder(&dir, 3, 24, 20).unwrap();
    assert_eq!(set.class_names, ["alice", "bob", "carol", "dave"]);
    assert_eq!(set.len(), 10);
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    for s in &skipped {
        assert!(!s.reason.is_empty());
    }
    assert!(skipped
        .iter()
        .any(|s| s.path.ends_with("carol/truncated.jpg")));
    assert_eq!(set.image_len(), 3 * 24 * 20);
    // grey input becomes three equal channels
    let d = set.labels.iter().position(|&l| l == 3).unwrap();
    let img = set.image(d);
    assert_eq!(&img[..480], &img[480..960]);
    let (grey, _) = load_folder(&dir, 1, 24, 20).unwrap();
    assert_eq!(grey.image_len(), 480);
}

#[test]
fn missing_and_empty_folders_are_clear_errors() {
    let err = format!(
        "{:#}",
        load_folder(Path::new("/nonexistent/faces"), 3, 8, 8).unwrap_err()
    );
    assert!(err.contains("/nonexistent/faces does not exist"), "{err}");
    let empty = scratch("empty");
    std::fs::create_dir_all(empty.join("nobody")).unwrap();
    let err = format!("{:#}", load_folder(&empty, 3, 8, 8).unwrap_err());
    assert!(err.contains("holds no images"), "{err}");
}

#[test]
fn idx_headers_are_checked_before_allocating() {
    let mut ok = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
    ok.extend([1u8; 8]);
    let (dims, data) = parse_idx(&ok, "x").unwrap();
    assert_eq!((dims, data.len()), (vec![2, 2, 2], 8));
    let huge = [
        0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3,
    ];
    let err = format!("{:#}", parse_idx(&huge, "x").unwrap_err());
    assert!(
        err.contains("declares") || err.contains("overflow"),
        "{err}"
    );
    assert!(format!("{:#}", parse_idx(&[0, 1, 8, 1], "f").unwrap_err())
        .contains("byte 0-1: bad IDX magic"));
    assert!(format!(
        "{:#}",
        parse_idx(&[0, 0, 9, 1, 0, 0, 0, 0], "f").unwrap_err()
    )
    .contains("element type 0x09"));
    assert!(format!("{:#}", parse_idx(&[0, 0, 8], "f").unwrap_err()).contains("too short"));
}

#[test]
fn real_mnist_when_present() {
    let Some(dir) = common::shared_data("mnist", "") else {
        return;
    };
    let test = regularface::data::mnist::load(&dir, "t10k").unwrap();
    assert_eq!(
        (test.len(), test.height, test.width, test.classes()),
        (10_000, 28, 28, 10)
    );
}

#[test]
fn synthetic_faces_are_deterministic_and_pairs_are_disjoint_by_fold() {
    let cfg = SyntheticConfig {
        identities: 30,
        images_per_identity: 4,
        height: 24,
        width: 20,
        seed: 9,
        difficulty: 1.0,
    };
    let (a, b) = (generate(&cfg), generate(&cfg));
    assert_eq!(a.pixels, b.pixels);
    assert_ne!(
        a.pixels,
        generate(&SyntheticConfig { seed: 10, ..cfg }).pixels
    );
    let pairs = make_pairs(&a, 5, 1);
    assert_eq!(pairs.len(), 100);
    for p in &pairs {
        assert_eq!(a.labels[p.a] == a.labels[p.b], p.same);
        assert_ne!(p.a, p.b);
    }
    // an identity appears in one fold only
    for id in 0..30 {
        let folds: std::collections::BTreeSet<usize> = pairs
            .iter()
            .filter(|p| a.labels[p.a] == id || a.labels[p.b] == id)
            .map(|p| p.fold)
            .collect();
        assert!(folds.len() <= 1, "identity {id} in folds {folds:?}");
    }
}
