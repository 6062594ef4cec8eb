//! Fuzzing of every parser of outside input, as property tests: a seeded
//! mutation fuzzer (bit flips, byte and "interesting value" writes, inserts,
//! deletions, truncation, duplication, splicing) over the committed seed corpus
//! in `tests/fuzz_corpus/` plus seeds made in code (a JPEG, a checkpoint).
//!
//! Property: no input panics, none takes more than a second, and the process
//! stays under 1 GiB (huge sizes declared in headers are refused before they
//! are allocated). `cargo test` runs `FUZZ_EXECS` executions per target
//! (default 3,000); the campaign recorded in the issue used
//! `FUZZ_EXECS=1000000 cargo test --release --test fuzz_parsers -- --nocapture`.
//! (`cargo fuzz` needs a nightly toolchain, which this project's machines do not have.)

use regularface::config::TrainConfig;
use regularface::data::images::{decode_image, preprocess};
use regularface::data::lfw::{parse_pairs, parse_people};
use regularface::data::mnist::parse_idx;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use tensor::{Rng, Tensor};

const INTERESTING_BYTES: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b' ', b'\n', b'-', b'{', b'"',
];
const INTERESTING_WORDS: &[u32] = &[
    0,
    1,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x10000,
    60_000,
    0x0100_0000,
];

fn mutate(rng: &mut Rng, seed: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let n = v.len();
        match rng.below(9) {
            0 if n > 0 => {
                let i = rng.below(n);
                v[i] ^= 1 << rng.below(8);
            }
            1 if n > 0 => {
                let i = rng.below(n);
                v[i] = rng.next_u64() as u8;
            }
            2 if n > 0 => {
                let i = rng.below(n);
                v[i] = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
            }
            3 if n >= 4 => {
                let i = rng.below(n - 3);
                let w = INTERESTING_WORDS[rng.below(INTERESTING_WORDS.len())];
                let bytes = if rng.below(2) == 0 {
                    w.to_be_bytes()
                } else {
                    w.to_le_bytes()
                };
                v[i..i + 4].copy_from_slice(&bytes);
            }
            4 => {
                let i = rng.below(n + 1);
                let extra: Vec<u8> = (0..1 + rng.below(16))
                    .map(|_| rng.next_u64() as u8)
                    .collect();
                v.splice(i..i, extra);
            }
            5 if n > 0 => {
                let i = rng.below(n);
                let len = 1 + rng.below((n - i).min(32));
                v.drain(i..i + len);
            }
            6 => v.truncate(rng.below(n + 1)),
            7 if n > 0 => {
                let i = rng.below(n);
                let len = 1 + rng.below((n - i).min(64));
                let copy = v[i..i + len].to_vec();
                let at = rng.below(n + 1);
                v.splice(at..at, copy);
            }
            _ => {
                let other = &corpus[rng.below(corpus.len())];
                let cut = rng.below(v.len() + 1);
                let from = rng.below(other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
        }
    }
    v
}

fn corpus(dir: &str, extra: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz_corpus")
        .join(dir);
    let mut c: Vec<Vec<u8>> = std::fs::read_dir(&d)
        .map(|r| {
            r.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    c.extend(extra);
    assert!(!c.is_empty(), "empty corpus for {dir}");
    c
}

fn peak_rss_mib() -> f64 {
    regularface::bench::peak_rss_mib()
}

/// Run `target` on the seeds and on `FUZZ_EXECS` mutants; returns (executions, slowest).
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, target: impl Fn(&[u8])) -> (usize, Duration) {
    let execs: usize = std::env::var("FUZZ_EXECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut rng = Rng::new(0xF022 ^ name.len() as u64);
    let mut slowest = Duration::ZERO;
    let mut pool = seeds.clone();
    for i in 0..execs + seeds.len() {
        let input = if i < seeds.len() {
            seeds[i].clone()
        } else {
            let parent = rng.below(pool.len());
            mutate(&mut rng, &pool[parent], &seeds)
        };
        let t = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&input)));
        let took = t.elapsed();
        if outcome.is_err() {
            let path = std::env::temp_dir().join(format!("fuzz-crash-{name}-{i}.bin"));
            std::fs::write(&path, &input).unwrap();
            panic!("{name}: input {i} panicked; saved to {}", path.display());
        }
        assert!(
            took < Duration::from_secs(1),
            "{name}: input {i} took {took:?}"
        );
        slowest = slowest.max(took);
        // Keep some mutants as new starting points, so mutations compound.
        if i >= seeds.len() && i % 64 == 0 && pool.len() < 256 {
            pool.push(input);
        }
    }
    let rss = peak_rss_mib();
    assert!(rss < 1024.0, "{name}: peak RSS {rss:.0} MiB");
    println!(
        "fuzz {name}: {} executions, no panic, slowest {slowest:?}, peak RSS {rss:.0} MiB",
        execs + seeds.len()
    );
    (execs, slowest)
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

#[test]
fn fuzz_idx() {
    fuzz("idx", corpus("idx", vec![]), |d| {
        let _ = parse_idx(d, "fuzz");
    });
}

#[test]
fn fuzz_pairs_txt() {
    fuzz("pairs", corpus("pairs", vec![]), |d| {
        let _ = parse_pairs(&text(d), "pairs.txt");
    });
}

#[test]
fn fuzz_people_txt() {
    fuzz("people", corpus("people", vec![]), |d| {
        let _ = parse_people(&text(d), "people.txt");
    });
}

#[test]
fn fuzz_images() {
    let img = image::RgbImage::from_fn(8, 6, |x, y| {
        image::Rgb([(x * 30) as u8, (y * 40) as u8, 77])
    });
    let mut jpeg = vec![];
    image::DynamicImage::ImageRgb8(img)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    fuzz("image", corpus("image", vec![jpeg]), |d| {
        if let Ok(img) = decode_image(d) {
            let _ = preprocess(&img, 3, 12, 10);
        }
    });
}

#[test]
fn fuzz_checkpoints_and_config() {
    let dir = std::env::temp_dir().join(format!("fuzz-ckpt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("seed.safetensors");
    let cfg = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus/config/small.json"),
    )
    .unwrap();
    let meta = BTreeMap::from([
        ("regularface.config".to_string(), cfg.trim().to_string()),
        ("regularface.classes".to_string(), "3".to_string()),
    ]);
    let tensors = vec![
        (
            "head.weight".to_string(),
            Tensor::<f32>::rand_normal(&[3, 4], 0.0, 1.0, &mut Rng::new(1)),
        ),
        ("backbone.x".to_string(), Tensor::zeros(&[2])),
    ];
    let counters = [("backbone.bn.num_batches_tracked".to_string(), 7)];
    nn::checkpoint::save(&path, &tensors, &counters, &meta).unwrap();
    let seed = std::fs::read(&path).unwrap();
    fuzz("checkpoint", vec![seed], |d| {
        if let Ok(ck) = nn::checkpoint::from_bytes::<f32>(d, Path::new("fuzz.safetensors")) {
            if let Some(c) = ck.metadata.get("regularface.config") {
                if let Ok(cfg) = TrainConfig::from_json(c) {
                    let _ = cfg.validate();
                }
            }
        }
    });
    fuzz("config", corpus("config", vec![]), |d| {
        if let Ok(cfg) = TrainConfig::from_json(&String::from_utf8_lossy(d)) {
            let _ = cfg.validate();
        }
    });
}

/// Seeds for the RecordIO targets: records written by our own writer, one
/// split at an embedded magic, with one- and two-label headers.
fn record_seeds() -> Vec<Vec<u8>> {
    use regularface::data::recordio::{encode_record, ImageHeader, MAGIC};
    let mut split = b"abcd".to_vec();
    split.extend_from_slice(&MAGIC.to_le_bytes());
    split.extend_from_slice(b"efgh");
    vec![
        encode_record(&ImageHeader::single(3.0, 1).pack(b"\xff\xd8jpeg")).unwrap(),
        encode_record(&ImageHeader::multi(vec![1.0, 5.0], 0).pack(&[])).unwrap(),
        encode_record(&split).unwrap(),
    ]
}

#[test]
fn fuzz_recordio_records() {
    use regularface::data::recordio::{read_record, ImageHeader};
    fuzz("rec", corpus("rec", record_seeds()), |d| {
        let mut cursor = std::io::Cursor::new(d);
        if let Ok(payload) = read_record(&mut cursor, 0, d.len() as u64) {
            let _ = ImageHeader::unpack(&payload);
        }
    });
}

#[test]
fn fuzz_recordio_index() {
    use regularface::data::recordio::parse_index;
    let seeds = vec![b"0\t0\n1\t16\n2\t48\n".to_vec(), b"5\t1024\n".to_vec()];
    fuzz("rec_index", corpus("rec_index", seeds), |d| {
        let _ = parse_index(&text(d), "train.idx");
    });
}

#[test]
fn fuzz_bin_pickles() {
    use regularface::data::pickle;
    use regularface::data::verification_bin::{encode, from_value, BinSet};
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bin");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&fixtures)
        .unwrap()
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    seeds.push(encode(&BinSet {
        images: vec![b"a".to_vec(), b"bb".to_vec()],
        issame: vec![true],
    }));
    fuzz("bin", corpus("bin", seeds), |d| {
        if let Ok(v) = pickle::load(d) {
            let _ = from_value(v);
        }
    });
}
