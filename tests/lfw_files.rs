//! LFW `pairs.txt` / `people.txt` parsers: small fixtures, malformed lines, and
//! the real files when `../shared/data/lfw` exists.

mod common;

use regularface::data::lfw::{parse_pairs, parse_people, Lfw};

const PAIRS: &str = "2 2\nAlice 1 2\nBob 1 3\nAlice 1 Bob 2\nCarol 1 Alice 2\nCarol 1 2\nDave 2 3\nDave 1 Carol 2\nBob 3 Dave 1\n";
const PEOPLE: &str = "2\n2\nAlice 2\nBob 3\n1\nCarol 2\n";

#[test]
fn parses_a_small_pairs_file() {
    let p = parse_pairs(PAIRS, "pairs.txt").unwrap();
    assert_eq!(p.len(), 8);
    assert!(p[0].same() && p[1].same() && !p[2].same() && !p[3].same());
    assert_eq!(
        (
            p[2].name_a.as_str(),
            p[2].num_a,
            p[2].name_b.as_str(),
            p[2].num_b,
            p[2].fold
        ),
        ("Alice", 1, "Bob", 2, 0)
    );
    assert_eq!(p[4].fold, 1);
    assert_eq!(p.iter().filter(|x| x.same()).count(), 4);
}

#[test]
fn parses_a_small_people_file() {
    let p = parse_people(PEOPLE, "people.txt").unwrap();
    assert_eq!(
        p,
        vec![
            vec![("Alice".to_string(), 2), ("Bob".to_string(), 3)],
            vec![("Carol".to_string(), 2)]
        ]
    );
}

#[test]
fn malformed_lines_are_reported_with_their_line_number() {
    let cases = [
        (
            "2 2\nAlice 1 2\nBob 1 x\n",
            "pairs.txt:3: image number `x` is not a whole number",
        ),
        (
            "2 2\nAlice 1 2\nAlice 1 Bob 2\n",
            "pairs.txt:3: expected a matched pair",
        ),
        (
            "2 2\nAlice 1 2\nBob 1 2\nAlice 1 Bob\n",
            "pairs.txt:4: expected a mismatched pair",
        ),
        ("10\n", "pairs.txt:1: header `10` must be"),
        (
            "1 1\nAlice 0 2\nAlice 1 Bob 2\n",
            "pairs.txt:2: image numbers start at 1",
        ),
        ("1 1\nAlice 1 2\n", "pairs.txt: ends early in fold 1"),
        (
            "1 1\nAlice 1 2\nAlice 1 Bob 2\nextra\n",
            "pairs.txt:4: unexpected line `extra`",
        ),
        ("", "pairs.txt: empty file"),
    ];
    for (text, want) in cases {
        let err = format!("{:#}", parse_pairs(text, "pairs.txt").unwrap_err());
        assert!(err.contains(want), "{text:?}: got `{err}`, want `{want}`");
    }
    let err = format!(
        "{:#}",
        parse_people("1\n2\nAlice 2\nBob\n", "people.txt").unwrap_err()
    );
    assert!(
        err.contains("people.txt:4: expected `name count`, found `Bob`"),
        "{err}"
    );
    let err = format!(
        "{:#}",
        parse_people("2\n1\nAlice 2\n", "people.txt").unwrap_err()
    );
    assert!(err.contains("ends before fold 2"), "{err}");
}

#[test]
fn the_real_lfw_files_parse_exactly() {
    let Some(root) = common::shared_data("lfw", "pairs.txt") else {
        return;
    };
    let lfw = Lfw::open(&root).unwrap();
    assert_eq!(lfw.pairs.len(), 6000);
    for fold in 0..10 {
        let f: Vec<_> = lfw.pairs.iter().filter(|p| p.fold == fold).collect();
        assert_eq!(f.len(), 600);
        assert_eq!(f.iter().filter(|p| p.same()).count(), 300);
        assert!(f[..300].iter().all(|p| p.same()) && f[300..].iter().all(|p| !p.same()));
    }
    assert_eq!(lfw.people.len(), 10);
    let people: usize = lfw.people.iter().map(|f| f.len()).sum();
    let images: usize = lfw.people.iter().flatten().map(|(_, c)| c).sum();
    assert!(
        people > 5000 && images > 12000,
        "{people} people, {images} images"
    );
    // every image a pair names exists on disk
    for p in lfw.pairs.iter().step_by(97) {
        assert!(
            regularface::data::lfw::image_path(&root, &p.name_a, p.num_a).exists(),
            "{p:?}"
        );
    }
}

#[test]
fn a_bin_packed_from_lfw_pairs_holds_the_same_pairs_as_the_folder() {
    let Some(root) = common::shared_data("lfw", "pairs.txt") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("regularface-lfwbin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("fold3.bin");
    let n = regularface::data::pack::lfw_pairs_to_bin(&root, &[3], &bin).unwrap();
    assert_eq!(n, 600);
    let input = (3, 56, 48);
    let (from_bin, same) = regularface::eval_bin::load_bin_images(&bin, input).unwrap();
    let lfw = Lfw::open(&root).unwrap();
    let (from_folder, pairs, _) = lfw.pair_set(&[3], input.0, input.1, input.2).unwrap();
    assert_eq!(from_bin.len(), 1200);
    for (i, p) in pairs.iter().enumerate() {
        assert_eq!(same[i], p.same, "pair {i}");
        assert_eq!(
            from_bin.image(2 * i),
            from_folder.image(p.a),
            "pair {i}, first image"
        );
        assert_eq!(
            from_bin.image(2 * i + 1),
            from_folder.image(p.b),
            "pair {i}, second image"
        );
    }
}

#[test]
fn pairs_and_people_folds_must_name_the_same_people() {
    use regularface::data::lfw::check_folds_agree;
    let pairs = parse_pairs(PAIRS, "pairs.txt").unwrap();
    // PAIRS uses Alice, Bob and Carol in fold 0 and Carol, Dave, Bob in fold 1
    let agree = "2\n3\nAlice 2\nBob 3\nCarol 2\n3\nCarol 2\nDave 3\nBob 3\n";
    assert!(check_folds_agree(&pairs, &parse_people(agree, "p").unwrap(), "lfw").is_ok());
    let err = check_folds_agree(&pairs, &parse_people(PEOPLE, "p").unwrap(), "lfw").unwrap_err();
    let err = format!("{err:#}");
    assert!(
        err.contains("pair 3 of pairs.txt (fold 0) names Bob")
            || err.contains("pair 4 of pairs.txt (fold 0) names Carol, who is in fold 1"),
        "{err}"
    );
}

#[test]
fn lfw_pair_images_are_labelled_by_person_so_rank1_is_defined() {
    let Some(root) = common::shared_data("lfw", "pairs.txt") else {
        return;
    };
    let lfw = Lfw::open(&root).unwrap();
    let (set, pairs, _) = lfw.pair_set(&[2], 1, 16, 16).unwrap();
    for p in pairs.iter().filter(|p| p.same) {
        assert_eq!(
            set.labels[p.a], set.labels[p.b],
            "a matched pair is one person"
        );
    }
    for p in pairs.iter().filter(|p| !p.same) {
        assert_ne!(set.labels[p.a], set.labels[p.b]);
    }
    // features that are the identity one-hot: rank-1 is perfect, and defined
    let feats: Vec<Vec<f32>> = set
        .labels
        .iter()
        .map(|&l| {
            (0..set.classes())
                .map(|c| if c == l { 1.0 } else { 0.0 })
                .collect()
        })
        .collect();
    assert_eq!(
        regularface::eval::rank1_identification(&feats, &set.labels),
        Some(1.0)
    );
}

#[test]
fn the_real_lfw_images_pack_and_read_back() {
    use regularface::data::recordio::{Layout, RecordPack};
    let Some(root) = common::shared_data("lfw", "pairs.txt") else {
        return;
    };
    let out = std::env::temp_dir().join(format!("regularface-lfwpack-{}", std::process::id()));
    let summary = regularface::data::pack::pack_folder(&root, &out).unwrap();
    assert_eq!(
        (summary.images, summary.identities, summary.size),
        (13_233, 5_749, (112, 112))
    );
    let pack = RecordPack::open(&out).unwrap();
    assert_eq!(pack.layout, Layout::Legacy { images_end: 13_234 });
    assert_eq!(pack.property, Some((5_749, 112, 112)));
    // record 1 is the first person's first image, byte for byte; the last is the last person's
    let (h, first) = pack.image(1).unwrap();
    assert_eq!(h.identity(), 0.0);
    assert_eq!(
        first,
        std::fs::read(root.join("AJ_Cook/AJ_Cook_0001.jpg")).unwrap()
    );
    let (h, last) = pack.image(13_233).unwrap();
    assert_eq!(h.identity(), 5_748.0);
    assert_eq!(
        last,
        std::fs::read(root.join("Zydrunas_Ilgauskas/Zydrunas_Ilgauskas_0001.jpg")).unwrap()
    );
    let images = regularface::data::stream::PackImages::open(&out, (3, 112, 96)).unwrap();
    assert_eq!(images.decode(0).unwrap().len(), 3 * 112 * 96);
    let _ = std::fs::remove_dir_all(&out);
}

/// Found by `cargo fuzz` (targets `pairs` and `people`): a header declaring
/// hundreds of millions of pairs, or a fold declaring billions of people,
/// made the parsers reserve that much memory up front (77 GB) and abort. The
/// counts now only bound what the file's lines can hold; the files are refused.
#[test]
fn declared_counts_do_not_allocate_before_the_lines_are_there() {
    let err = parse_pairs("2 266666666", "pairs.txt")
        .unwrap_err()
        .to_string();
    assert!(err.contains("ends early in fold 1"), "{err}");
    let err = parse_pairs("3 99999999999999999", "pairs.txt")
        .unwrap_err()
        .to_string();
    assert!(err.contains("ends early"), "{err}");
    let err = parse_people("3\n2222222222222\n2\nAi\u{c2} 1S2l 2\n", "people.txt")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("people.txt:"), "{err}");
}
