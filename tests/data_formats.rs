//! insightface's data formats from their published layouts: RecordIO packs
//! (records split at embedded magics, both layouts, multi-label headers, PNG
//! and JPEG payloads) and `.bin` verification sets in every pickle flavour,
//! written by our own writers and by Python (fixtures), and hostile files.

use regularface::data::pickle;
use regularface::data::recordio::{
    encode_record, parse_index, read_record, ImageHeader, Layout, PackWriter, RecordPack, MAGIC,
};
use regularface::data::verification_bin::{self, BinSet};
use std::io::Cursor;
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("regularface-formats-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn encoded(format: image::ImageFormat, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 12, |x, y| {
        image::Rgb([x as u8 * 9 + seed, y as u8 * 13, seed])
    });
    let mut out = Cursor::new(vec![]);
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .unwrap();
    out.into_inner()
}

#[test]
fn records_split_at_embedded_magics_read_back_whole() {
    let magic = MAGIC.to_le_bytes();
    let mut payload = magic.to_vec(); // at offset 0
    payload.extend_from_slice(b"abcdefgh");
    payload.extend_from_slice(&magic); // aligned, in the middle
    payload.extend_from_slice(b"xy"); // unaligned tail
    payload.extend_from_slice(&magic); // unaligned: not a split point
    let bytes = encode_record(&payload).unwrap();
    assert_eq!(bytes.len() % 4, 0);
    let flags: Vec<u32> = (0..bytes.len())
        .step_by(4)
        .filter(|&i| bytes[i..i + 4] == magic && i + 8 <= bytes.len())
        .map(|i| u32::from_le_bytes(bytes[i + 4..i + 8].try_into().unwrap()) >> 29)
        .collect();
    assert_eq!(&flags[..3], &[1, 2, 3], "first, middle and last part");
    let back = read_record(&mut Cursor::new(&bytes), 0, bytes.len() as u64).unwrap();
    assert_eq!(back, payload);
    // a plain record is one part, flag 0
    let plain = encode_record(b"hello").unwrap();
    assert_eq!(plain.len(), 16);
    assert_eq!(u32::from_le_bytes(plain[4..8].try_into().unwrap()), 5);
}

#[test]
fn headers_with_one_or_several_labels() {
    let img = encoded(image::ImageFormat::Png, 1);
    let one = ImageHeader::single(7.0, 3);
    let (h, rest) = ImageHeader::unpack(&one.pack(&img))
        .map(|(h, r)| (h, r.to_vec()))
        .unwrap();
    assert_eq!((h.clone(), rest.as_slice()), (one, img.as_slice()));
    assert_eq!(h.identity(), 7.0);
    let multi = ImageHeader::multi(vec![5.0, 0.25, 9.0], 4);
    let packed = multi.pack(&img);
    assert_eq!(packed.len(), 24 + 12 + img.len());
    let (h, rest) = ImageHeader::unpack(&packed).unwrap();
    assert_eq!((h.flag, h.identity(), rest), (3, 5.0, img.as_slice()));
    assert!(ImageHeader::unpack(&packed[..20]).is_err());
    let mut lying = packed.clone();
    lying[..4].copy_from_slice(&1_000_000u32.to_le_bytes());
    let err = format!("{:#}", ImageHeader::unpack(&lying).unwrap_err());
    assert!(err.contains("flag 1000000"), "{err}");
}

#[test]
fn legacy_packs_from_our_writer_and_plain_packs_open_with_their_layout() {
    let dir = scratch("legacy");
    let mut w = PackWriter::create(&dir, 12, 16).unwrap();
    let images: Vec<(usize, Vec<u8>)> = (0..7u8)
        .map(|i| {
            let fmt = if i % 2 == 0 {
                image::ImageFormat::Jpeg
            } else {
                image::ImageFormat::Png
            };
            ((i / 3) as usize, encoded(fmt, i))
        })
        .collect();
    for (label, img) in &images {
        w.add(*label, img).unwrap();
    }
    w.finish().unwrap();
    assert!(!dir.join("train.rec.tmp").exists());
    let pack = RecordPack::open(&dir).unwrap();
    assert_eq!(pack.layout, Layout::Legacy { images_end: 8 });
    assert_eq!(pack.property, Some((3, 12, 16)));
    assert_eq!(pack.image_keys, (1..8).collect::<Vec<u64>>());
    for (k, (label, img)) in pack.image_keys.iter().zip(&images) {
        let (h, bytes) = pack.image(*k).unwrap();
        assert_eq!((h.identity() as usize, &bytes), (*label, img));
        image::load_from_memory(&bytes).expect("decodes");
    }
    // identity records: [start, end) image keys per class
    let (h, _) = ImageHeader::unpack(&pack.read(8).unwrap())
        .map(|(h, r)| (h, r.len()))
        .unwrap();
    assert_eq!(h.labels, vec![1.0, 4.0]);
    let (h, _) = ImageHeader::unpack(&pack.read(10).unwrap())
        .map(|(h, r)| (h, r.len()))
        .unwrap();
    assert_eq!(h.labels, vec![7.0, 8.0]);

    // plain: images only, keys from 0, no property
    let plain = scratch("plain");
    let (mut rec, mut idx) = (vec![], String::new());
    for (k, (label, img)) in images.iter().enumerate() {
        idx.push_str(&format!("{k}\t{}\n", rec.len()));
        rec.extend(
            encode_record(&ImageHeader::multi(vec![*label as f32, 1.0], k as u64).pack(img))
                .unwrap(),
        );
    }
    std::fs::write(plain.join("train.rec"), &rec).unwrap();
    std::fs::write(plain.join("train.idx"), idx).unwrap();
    let pack = RecordPack::open(&plain).unwrap();
    assert_eq!(
        (pack.layout, pack.image_keys.len(), pack.property),
        (Layout::Plain, 7, None)
    );
    assert_eq!(pack.image(6).unwrap().0.identity(), 2.0);
}

#[test]
fn hostile_packs_give_clear_errors() {
    let dir = scratch("hostile");
    let rec = encode_record(&ImageHeader::single(0.0, 0).pack(b"jpegbytes")).unwrap();
    let check = |rec: &[u8], idx: &str, want: &str| {
        std::fs::write(dir.join("train.rec"), rec).unwrap();
        std::fs::write(dir.join("train.idx"), idx).unwrap();
        let err = match RecordPack::open(&dir).and_then(|p| p.read(0)) {
            Ok(_) => panic!("accepted: {want}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(want), "want `{want}` in: {err}");
    };
    check(&rec[..rec.len() - 8], "0\t0\n", "past the end");
    let mut bad_magic = rec.clone();
    bad_magic[0] ^= 1;
    check(&bad_magic, "0\t0\n", "not a RecordIO record");
    let mut huge = rec.clone();
    huge[4..8].copy_from_slice(&((1u32 << 29) - 1).to_le_bytes());
    check(&huge, "0\t0\n", "runs past the end");
    let mut bad_flag = rec.clone();
    bad_flag[4..8].copy_from_slice(&((2u32 << 29) | 9).to_le_bytes());
    check(&bad_flag, "0\t0\n", "out of sequence");
    check(&rec, "0\t99999\n", "past the end of");
    check(&rec, "0 0\n", "line 1: expected `key<TAB>offset`");
    check(&rec, "0\t0\n0\t0\n", "key 0 appears twice");
    check(&rec, "", "index is empty");
    assert!(format!("{:#}", parse_index("x\t1", "i").unwrap_err()).contains("bad key `x`"));
    std::fs::write(dir.join("property"), "3,112").unwrap();
    check(&rec, "0\t0\n", "expected 3 numbers");
    std::fs::remove_file(dir.join("property")).unwrap();
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bin")
        .join(name)
}

/// The images and flags every fixture holds.
fn fixture_set() -> BinSet {
    let mut second = vec![0x0a, 0x23, 0xd7, 0xce];
    second.extend_from_slice(b"second");
    BinSet {
        images: vec![
            b"\xff\xd8first".to_vec(),
            second,
            b"third\x00\x01".to_vec(),
            b"\x89PNGfourth".to_vec(),
        ],
        issame: vec![true, false],
    }
}

/// Python 2's `pickle.dump((bins, issame), f, protocol=2)` with `str` images,
/// written by hand from the opcode table: PROTO 2, EMPTY_LIST, BINPUT, MARK,
/// SHORT_BINSTRING / BINSTRING per image, APPENDS, the flags, TUPLE2, STOP.
fn python2_bytes(set: &BinSet) -> Vec<u8> {
    let mut p = vec![0x80, 2, b']', b'q', 1, b'('];
    for (i, img) in set.images.iter().enumerate() {
        if i % 2 == 0 {
            p.push(b'U');
            p.push(img.len() as u8);
        } else {
            p.push(b'T');
            p.extend_from_slice(&(img.len() as u32).to_le_bytes());
        }
        p.extend_from_slice(img);
    }
    p.extend_from_slice(&[b'e', b']', b'q', 2, b'(']);
    p.extend(set.issame.iter().map(|&s| if s { 0x88 } else { 0x89 }));
    p.extend_from_slice(&[b'e', 0x86, b'q', 3, b'.']);
    p
}

#[test]
fn bin_sets_read_in_every_flavour() {
    let want = fixture_set();
    // Made with Python 3.11 and numpy 2.4: pickle.dumps((bins, [True, False]), protocol=P),
    // bins as bytes or as np.frombuffer(b, np.uint8).copy().
    for name in [
        "py3_protocol2_bytes.bin",
        "py3_protocol4_bytes.bin",
        "py3_protocol2_numpy.bin",
        "py3_protocol4_numpy.bin",
        "py3_protocol5_numpy.bin",
    ] {
        assert_eq!(
            verification_bin::read(&fixture(name)).unwrap(),
            want,
            "{name}"
        );
    }
    let py2 = pickle::load(&python2_bytes(&want)).unwrap();
    assert_eq!(verification_bin::from_value(py2).unwrap(), want);
    // our writer, read back
    let dir = scratch("bin");
    verification_bin::write(&dir.join("ours.bin"), &want).unwrap();
    assert_eq!(verification_bin::read(&dir.join("ours.bin")).unwrap(), want);
}

#[test]
fn hostile_pickles_give_clear_errors() {
    let ours = verification_bin::encode(&fixture_set());
    let err = |bytes: &[u8]| match pickle::load(bytes).and_then(verification_bin::from_value) {
        Ok(_) => panic!("accepted"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err(&ours[..ours.len() - 1]).contains("runs past the end"));
    assert!(err(&ours[..30]).contains("past the end"));
    let mut huge = ours.clone();
    huge[5..13].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(err(&huge).contains("runs past the end"));
    // os.system via REDUCE: a global is a name, and calling it is refused
    let evil = b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.";
    let e = err(evil);
    assert!(
        e.contains("byte") && e.contains("`os.system` is not supported"),
        "{e}"
    );
    let e = err(b"\x80\x02I42\n.");
    assert!(e.contains("byte 2") && e.contains("opcode 0x49"), "{e}");
    assert!(err(b"\x80\x02.").contains("underflow"));
    assert!(err(b"\x80\x02]].").contains("expected a (bins, issame_list) tuple"));
    let odd = verification_bin::encode(&BinSet {
        images: vec![vec![1]],
        issame: vec![],
    });
    assert!(err(&odd).contains("two images per pair"));
}

#[test]
fn insightface_protocol_folds_and_accuracy() {
    use regularface::eval_bin::{insightface_accuracy, kfold_of};
    // KFold(10) without shuffling: 6,000 pairs are LFW's ten folds of 600;
    // 13 pairs give folds of 2, 2, 2, then 1.
    assert_eq!(
        (kfold_of(0, 6000), kfold_of(599, 6000), kfold_of(600, 6000)),
        (0, 0, 1)
    );
    let folds: Vec<usize> = (0..13).map(|i| kfold_of(i, 13)).collect();
    assert_eq!(folds, vec![0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9]);
    // separable distances (same < 1.0 <= different): every fold is right, at the
    // first threshold above the largest same-person distance
    let same: Vec<bool> = (0..40).map(|i| i % 2 == 0).collect();
    let dist: Vec<f64> = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                0.5 + i as f64 * 0.001
            } else {
                1.5
            }
        })
        .collect();
    let (acc, std, thr) = insightface_accuracy(&dist, &same);
    assert_eq!((acc, std), (1.0, 0.0));
    assert!((0.54..=0.55).contains(&thr), "{thr}");
}

#[test]
fn a_model_evaluates_on_a_bin_set() {
    use regularface::config::TrainConfig;
    use regularface::model::FaceModel;
    let dir = scratch("evalbin");
    let images: Vec<Vec<u8>> = (0..8u8)
        .map(|i| encoded(image::ImageFormat::Png, 20 * i))
        .collect();
    let set = BinSet {
        images,
        issame: vec![true, false, true, false],
    };
    let path = dir.join("tiny.bin");
    verification_bin::write(&path, &set).unwrap();
    let cfg = TrainConfig {
        input: (3, 32, 32),
        feature_dim: 16,
        ..TrainConfig::DEFAULT
    };
    let model = FaceModel::new(&cfg, 3).unwrap();
    let r = regularface::eval_bin::evaluate_bin(&model, &path).unwrap();
    assert_eq!((r.name.as_str(), r.pairs), ("tiny", 4));
    assert!((0.0..=1.0).contains(&r.accuracy) && (0.0..=1.0).contains(&r.sphereface_accuracy));
    let mut broken = set.clone();
    broken.images[5] = b"not an image".to_vec();
    verification_bin::write(&path, &broken).unwrap();
    let err = format!(
        "{:#}",
        regularface::eval_bin::evaluate_bin(&model, &path).unwrap_err()
    );
    assert!(err.contains("tiny.bin image 5"), "{err}");
}

/// Found by `cargo fuzz` (target `image`, a timeout): a 163-byte run-length
/// BMP declaring 8192 x 5632 pixels took over a second to decode and
/// preprocess. Headers over 4096 pixels a side are now refused before decoding.
#[test]
fn oversized_image_headers_are_refused_before_decoding() {
    use regularface::data::images::decode_image;
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_corpus/image/rle_bmp_8192x5632.bmp"),
    )
    .unwrap();
    let err = format!("{:#}", decode_image(&bytes).unwrap_err());
    assert!(err.to_lowercase().contains("limit"), "{err}");
}

/// Found by `cargo fuzz` (target `bin`, a SIGSEGV): lists nested tens of
/// thousands deep overflowed the stack when dropped. Containers are now
/// limited to 1000 (a `.bin` set holds a few dozen), and the memo's copies to
/// a million values (reading a list back into itself doubles it each time).
#[test]
fn hostile_pickles_are_refused_before_they_nest_or_grow_without_bound() {
    // PROTO 2, 50,000 x EMPTY_LIST, 49,999 x APPEND, STOP
    let mut deep = vec![0x80, 2];
    deep.extend(std::iter::repeat_n(b']', 50_000));
    deep.extend(std::iter::repeat_n(b'a', 49_999));
    deep.push(b'.');
    let err = pickle::load(&deep).unwrap_err().to_string();
    assert!(err.contains("more than 1000"), "{err}");
    // a list memoised, then appended to a copy of itself from the memo, 40 times:
    // EMPTY_LIST, BINPUT 0, then (BINGET 0, APPEND, BINPUT 0) x 40
    let mut doubling = vec![0x80, 2, b']', b'q', 0, b'N', b'a', b'q', 0];
    for _ in 0..40 {
        doubling.extend_from_slice(&[b'h', 0, b'a', b'q', 0]);
    }
    doubling.push(b'.');
    let err = pickle::load(&doubling).unwrap_err().to_string();
    assert!(err.contains("memo copies more than"), "{err}");
}
