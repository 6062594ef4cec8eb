//! LFW's View 2 files and the *unrestricted, no outside data* protocol.
//!
//! `pairs.txt`: a header `10 300`, then for each of 10 folds 300 matched lines
//! `name n1 n2` followed by 300 mismatched lines `name1 n1 name2 n2`.
//! `people.txt`: a header `10`, then for each fold a count line and that many
//! `name count` lines. Image `n` of `name` is `name/name_{n:04}.jpg`.

use super::images::{load_files, Skipped};
use super::{FaceSet, Pair};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One pair of LFW images by name and number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPair {
    /// First person.
    pub name_a: String,
    /// Their image number (1-based).
    pub num_a: usize,
    /// Second person (equal to the first for a matched pair).
    pub name_b: String,
    /// Their image number.
    pub num_b: usize,
    /// Fold, 0..10.
    pub fold: usize,
}

impl NamedPair {
    /// True for a matched pair.
    pub fn same(&self) -> bool {
        self.name_a == self.name_b
    }
}

fn parse_num(tok: &str, file: &str, line: usize, what: &str) -> Result<usize> {
    tok.parse::<usize>()
        .with_context(|| format!("{file}:{line}: {what} `{tok}` is not a whole number"))
}

/// Non-empty lines, trimmed, with their 1-based line numbers (for error messages).
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
}

/// Parse `pairs.txt` text (`file` names it in errors).
pub fn parse_pairs(text: &str, file: &str) -> Result<Vec<NamedPair>> {
    let mut lines = numbered_lines(text);
    let (ln, header) = lines
        .next()
        .with_context(|| format!("{file}: empty file (expected a `10 300` header)"))?;
    let h: Vec<&str> = header.split_whitespace().collect();
    if h.len() != 2 {
        bail!(
            "{file}:{ln}: header `{header}` must be `<folds> <pairs per half-fold>`, e.g. `10 300`"
        );
    }
    let (folds, per) = (
        parse_num(h[0], file, ln, "fold count")?,
        parse_num(h[1], file, ln, "pair count")?,
    );
    // The header's counts are not trusted for the allocation: each pair needs
    // a line, so the file's line count bounds the capacity (a header of
    // `2 266666666` once asked for 77 GB).
    let mut pairs = Vec::with_capacity(
        folds
            .saturating_mul(per)
            .saturating_mul(2)
            .min(text.lines().count()),
    );
    for fold in 0..folds {
        for k in 0..2 * per {
            let matched = k < per;
            let (ln, line) = lines.next().with_context(|| {
                format!(
                    "{file}: ends early in fold {} (pair {} of {})",
                    fold + 1,
                    k + 1,
                    2 * per
                )
            })?;
            let t: Vec<&str> = line.split_whitespace().collect();
            let pair = match (matched, t.len()) {
                (true, 3) => NamedPair {
                    name_a: t[0].into(),
                    num_a: parse_num(t[1], file, ln, "image number")?,
                    name_b: t[0].into(),
                    num_b: parse_num(t[2], file, ln, "image number")?,
                    fold,
                },
                (false, 4) => NamedPair {
                    name_a: t[0].into(),
                    num_a: parse_num(t[1], file, ln, "image number")?,
                    name_b: t[2].into(),
                    num_b: parse_num(t[3], file, ln, "image number")?,
                    fold,
                },
                _ => bail!(
                    "{file}:{ln}: expected a {} pair `{}` in fold {}, found `{line}`",
                    if matched { "matched" } else { "mismatched" },
                    if matched {
                        "name n1 n2"
                    } else {
                        "name1 n1 name2 n2"
                    },
                    fold + 1
                ),
            };
            if pair.num_a == 0 || pair.num_b == 0 {
                bail!("{file}:{ln}: image numbers start at 1, found `{line}`");
            }
            pairs.push(pair);
        }
    }
    if let Some((ln, extra)) = lines.next() {
        bail!(
            "{file}:{ln}: unexpected line `{extra}` after {folds} folds of {} pairs",
            2 * per
        );
    }
    Ok(pairs)
}

/// Parse `people.txt` text: the people of each fold with their image counts.
pub fn parse_people(text: &str, file: &str) -> Result<Vec<Vec<(String, usize)>>> {
    let mut lines = numbered_lines(text);
    let (ln, header) = lines
        .next()
        .with_context(|| format!("{file}: empty file (expected a fold count)"))?;
    let folds = parse_num(header, file, ln, "fold count")?;
    let line_count = text.lines().count();
    let mut out = vec![];
    for fold in 0..folds {
        let (ln, count) = lines
            .next()
            .with_context(|| format!("{file}: ends before fold {}", fold + 1))?;
        let n = parse_num(count, file, ln, "people count")?;
        // Bounded by the lines there are, not by the declared count.
        let mut people = Vec::with_capacity(n.min(line_count));
        for _ in 0..n {
            let (ln, line) = lines
                .next()
                .with_context(|| format!("{file}: ends inside fold {}", fold + 1))?;
            let t: Vec<&str> = line.split_whitespace().collect();
            if t.len() != 2 {
                bail!("{file}:{ln}: expected `name count`, found `{line}`");
            }
            people.push((t[0].to_string(), parse_num(t[1], file, ln, "image count")?));
        }
        out.push(people);
    }
    if let Some((ln, extra)) = lines.next() {
        bail!("{file}:{ln}: unexpected line `{extra}` after {folds} folds");
    }
    Ok(out)
}

/// Check that every pair of `pairs.txt` fold K names people of `people.txt`
/// fold K (the protocol's folds are the same people; if they were not, training
/// on nine folds of people would see test identities).
pub fn check_folds_agree(
    pairs: &[NamedPair],
    people: &[Vec<(String, usize)>],
    root: &str,
) -> Result<()> {
    let folds: Vec<std::collections::HashSet<&str>> = people
        .iter()
        .map(|f| f.iter().map(|(n, _)| n.as_str()).collect())
        .collect();
    for (i, p) in pairs.iter().enumerate() {
        for name in [&p.name_a, &p.name_b] {
            if !folds.get(p.fold).is_some_and(|f| f.contains(name.as_str())) {
                let home = folds.iter().position(|f| f.contains(name.as_str()));
                bail!(
                    "{root}: pair {} of pairs.txt (fold {}) names {name}, who is {} of people.txt; the two files' folds must name the same people",
                    i + 1,
                    p.fold,
                    home.map_or("in no fold".to_string(), |h| format!("in fold {h}"))
                );
            }
        }
    }
    Ok(())
}

/// Path of image `num` of `name` under an LFW folder.
pub fn image_path(root: &Path, name: &str, num: usize) -> PathBuf {
    root.join(name).join(format!("{name}_{num:04}.jpg"))
}

/// An LFW folder with its parsed `pairs.txt` and `people.txt`.
pub struct Lfw {
    /// The folder.
    pub root: PathBuf,
    /// View 2 pairs.
    pub pairs: Vec<NamedPair>,
    /// People per fold.
    pub people: Vec<Vec<(String, usize)>>,
}

impl Lfw {
    /// Read `pairs.txt` and `people.txt` from `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let read = |f: &str| {
            let p = root.join(f);
            std::fs::read_to_string(&p).with_context(|| {
                format!(
                    "cannot read {} (is {} an LFW folder?)",
                    p.display(),
                    root.display()
                )
            })
        };
        let pairs = parse_pairs(
            &read("pairs.txt")?,
            &root.join("pairs.txt").display().to_string(),
        )?;
        let people = parse_people(
            &read("people.txt")?,
            &root.join("people.txt").display().to_string(),
        )?;
        check_folds_agree(&pairs, &people, &root.display().to_string())?;
        Ok(Lfw {
            root: root.to_path_buf(),
            pairs,
            people,
        })
    }

    /// Training images: every image of the people of every fold but `test_fold`
    /// (the *unrestricted, no outside data* protocol).
    pub fn training_set(
        &self,
        test_fold: usize,
        channels: usize,
        h: usize,
        w: usize,
    ) -> (FaceSet, Vec<Skipped>) {
        let mut names = vec![];
        let mut files = vec![];
        for (f, people) in self.people.iter().enumerate() {
            if f == test_fold {
                continue;
            }
            for (name, count) in people {
                let label = names.len();
                names.push(name.clone());
                files.extend((1..=*count).map(|n| (label, image_path(&self.root, name, n))));
            }
        }
        load_files(&files, names, channels, h, w)
    }

    /// The images of the pairs of `folds` (all ten when empty) and the pairs indexing them.
    pub fn pair_set(
        &self,
        folds: &[usize],
        channels: usize,
        h: usize,
        w: usize,
    ) -> Result<(FaceSet, Vec<Pair>, Vec<Skipped>)> {
        let chosen: Vec<&NamedPair> = self
            .pairs
            .iter()
            .filter(|p| folds.is_empty() || folds.contains(&p.fold))
            .collect();
        let mut index: BTreeMap<(String, usize), usize> = BTreeMap::new();
        for p in &chosen {
            for key in [(p.name_a.clone(), p.num_a), (p.name_b.clone(), p.num_b)] {
                let n = index.len();
                index.entry(key).or_insert(n);
            }
        }
        let mut keys: Vec<(&(String, usize), &usize)> = index.iter().collect();
        keys.sort_by_key(|(_, &i)| i);
        // Each image is labelled with its person, so rank-1 identification over
        // the pair images has people with several images to find.
        let mut people: Vec<String> = vec![];
        let mut label_of: std::collections::HashMap<&str, usize> = Default::default();
        let files: Vec<(usize, PathBuf)> = keys
            .iter()
            .map(|((name, n), _)| {
                let label = *label_of.entry(name.as_str()).or_insert_with(|| {
                    people.push(name.clone());
                    people.len() - 1
                });
                (label, image_path(&self.root, name, *n))
            })
            .collect();
        let names = people;
        let (set, skipped) = load_files(&files, names, channels, h, w);
        if !skipped.is_empty() {
            bail!(
                "{} pair image(s) could not be read, first: {}: {}",
                skipped.len(),
                skipped[0].path.display(),
                skipped[0].reason
            );
        }
        let pairs = chosen
            .iter()
            .map(|p| Pair {
                a: index[&(p.name_a.clone(), p.num_a)],
                b: index[&(p.name_b.clone(), p.num_b)],
                same: p.same(),
                fold: p.fold,
            })
            .collect();
        Ok((set, pairs, skipped))
    }
}
