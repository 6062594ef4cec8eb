//! insightface's RecordIO packs (`train.rec`, `train.idx`, `property`), read
//! and written from the published layouts.
//!
//! **dmlc RecordIO** (`dmlc-core/include/dmlc/recordio.h`): a record is a u32
//! magic `0xced7230a`, a u32 `lrec` (top 3 bits a continuation flag, low 29 the
//! length), the payload, and zero padding to 4 bytes, all little-endian. A
//! payload that contains the magic at a 4-byte-aligned offset is split there,
//! the magic itself dropped: parts flagged 1 (first), 2 (middle) and 3 (last),
//! unpadded but for the last; a reader joins them with the magic between.
//! `train.idx` lines are `key\toffset`, the offset of the record's first part.
//!
//! **mxnet's image record** payload (`mx.recordio.pack`): the 24-byte
//! `IRHeader` (`u32 flag, f32 label, u64 id, u64 id2`), then `flag` f32
//! labels when `flag > 0` (the header's label is then 0), then the encoded image.
//!
//! **insightface's layouts**: *legacy* packs (its older `rec_builder`, every
//! classic download) start with record 0, a header of `flag 2` and labels
//! `[first identity record, end]`; images are records `1 .. label[0]`, and
//! the identity records after them hold each identity's `[start, end)` image
//! range. *Plain* packs hold images only, keys from 0. A record's identity is
//! its header's label, or its first extra label when `flag > 0`.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The record magic.
pub const MAGIC: u32 = 0xced7_230a;
/// Largest payload part the format encodes (29 bits).
pub const MAX_PART: usize = (1 << 29) - 1;
/// Largest record this reader assembles (a face image is far smaller).
pub const MAX_RECORD: usize = 64 << 20;
/// Size of mxnet's `IRHeader`.
pub const HEADER_LEN: usize = 24;

/// mxnet's image-record header, with the extra labels that follow it.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageHeader {
    /// Number of extra labels (0: the label is `label`).
    pub flag: u32,
    /// The label when `flag == 0`.
    pub label: f32,
    /// Record id.
    pub id: u64,
    /// Second id.
    pub id2: u64,
    /// The `flag` extra labels.
    pub labels: Vec<f32>,
}

impl ImageHeader {
    /// A header with one label (flag 0).
    pub fn single(label: f32, id: u64) -> Self {
        ImageHeader {
            flag: 0,
            label,
            id,
            id2: 0,
            labels: vec![],
        }
    }

    /// A header with several labels (flag = their count, as `mx.recordio.pack` writes it).
    pub fn multi(labels: Vec<f32>, id: u64) -> Self {
        ImageHeader {
            flag: labels.len() as u32,
            label: 0.0,
            id,
            id2: 0,
            labels,
        }
    }

    /// The identity this record is labelled with.
    pub fn identity(&self) -> f32 {
        self.labels.first().copied().unwrap_or(self.label)
    }

    /// Header, labels and `image` as one payload.
    pub fn pack(&self, image: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 4 * self.labels.len() + image.len());
        out.extend_from_slice(&self.flag.to_le_bytes());
        out.extend_from_slice(&self.label.to_le_bytes());
        out.extend_from_slice(&self.id.to_le_bytes());
        out.extend_from_slice(&self.id2.to_le_bytes());
        self.labels
            .iter()
            .for_each(|l| out.extend_from_slice(&l.to_le_bytes()));
        out.extend_from_slice(image);
        out
    }

    /// Split a payload into its header and the image bytes.
    pub fn unpack(payload: &[u8]) -> Result<(ImageHeader, &[u8])> {
        if payload.len() < HEADER_LEN {
            bail!(
                "payload of {} bytes is shorter than the 24-byte IRHeader",
                payload.len()
            );
        }
        let u32_at = |o: usize| u32::from_le_bytes(payload[o..o + 4].try_into().expect("4"));
        let u64_at = |o: usize| u64::from_le_bytes(payload[o..o + 8].try_into().expect("8"));
        let flag = u32_at(0);
        let extra = 4 * flag as usize;
        if payload.len() - HEADER_LEN < extra {
            bail!(
                "IRHeader flag {flag} announces {extra} bytes of labels, the payload has {}",
                payload.len() - HEADER_LEN
            );
        }
        let labels = payload[HEADER_LEN..HEADER_LEN + extra]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4")))
            .collect();
        let header = ImageHeader {
            flag,
            label: f32::from_bits(u32_at(4)),
            id: u64_at(8),
            id2: u64_at(16),
            labels,
        };
        Ok((header, &payload[HEADER_LEN + extra..]))
    }
}

/// Encode one record (split at embedded magics) as dmlc's writer does.
pub fn encode_record(payload: &[u8]) -> Result<Vec<u8>> {
    if payload.len() > MAX_PART {
        bail!(
            "record of {} bytes exceeds RecordIO's 2^29 - 1",
            payload.len()
        );
    }
    let mut out = Vec::with_capacity(payload.len() + 12);
    let part = |flag: u32, bytes: &[u8], out: &mut Vec<u8>| {
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&((flag << 29) | bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    let magic = MAGIC.to_le_bytes();
    let mut start = 0;
    for i in (0..payload.len() / 4 * 4).step_by(4) {
        if payload[i..i + 4] == magic {
            part(if start == 0 { 1 } else { 2 }, &payload[start..i], &mut out);
            start = i + 4;
        }
    }
    part(if start == 0 { 0 } else { 3 }, &payload[start..], &mut out);
    out.resize(out.len().next_multiple_of(4), 0);
    Ok(out)
}

/// Parse `train.idx` text: `key\toffset` per line. Errors name the line.
pub fn parse_index(text: &str, file: &str) -> Result<BTreeMap<u64, u64>> {
    let mut index = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let mut f = line.split('\t');
        let (Some(k), Some(o), None) = (f.next(), f.next(), f.next()) else {
            bail!(
                "{file} line {}: expected `key<TAB>offset`, got `{line}`",
                n + 1
            );
        };
        let parse = |s: &str, what: &str| {
            s.trim()
                .parse::<u64>()
                .with_context(|| format!("{file} line {}: bad {what} `{s}`", n + 1))
        };
        let (key, offset) = (parse(k, "key")?, parse(o, "offset")?);
        if index.insert(key, offset).is_some() {
            bail!("{file} line {}: key {key} appears twice", n + 1);
        }
    }
    Ok(index)
}

/// Read one record starting at byte `offset` of `r`, joining split parts.
/// Lengths are checked against `file_len` before anything is allocated.
pub fn read_record<R: Read + Seek>(r: &mut R, offset: u64, file_len: u64) -> Result<Vec<u8>> {
    r.seek(SeekFrom::Start(offset))?;
    let mut payload = Vec::new();
    let mut pos = offset;
    loop {
        if pos + 8 > file_len {
            bail!("byte {pos}: record header past the end of the file ({file_len} bytes)");
        }
        let mut head = [0u8; 8];
        r.read_exact(&mut head)?;
        let magic = u32::from_le_bytes(head[..4].try_into().expect("4"));
        if magic != MAGIC {
            bail!(
                "byte {pos}: magic {magic:#010x}, expected {MAGIC:#010x} (not a RecordIO record)"
            );
        }
        let lrec = u32::from_le_bytes(head[4..].try_into().expect("4"));
        let (flag, len) = (lrec >> 29, (lrec as usize) & MAX_PART);
        let expected_first = payload.is_empty() && pos == offset;
        match (flag, expected_first) {
            (0 | 1, true) | (2 | 3, false) => {}
            _ => bail!("byte {pos}: continuation flag {flag} out of sequence"),
        }
        if pos + 8 + len as u64 > file_len || payload.len() + len + 4 > MAX_RECORD {
            bail!(
                "byte {pos}: record part of {len} bytes runs past the end of the file or the {MAX_RECORD}-byte limit"
            );
        }
        let at = payload.len();
        payload.resize(at + len, 0);
        r.read_exact(&mut payload[at..])?;
        pos += 8 + len as u64;
        if flag == 0 || flag == 3 {
            return Ok(payload);
        }
        payload.extend_from_slice(&MAGIC.to_le_bytes());
    }
}

/// Which of insightface's layouts a pack has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Record 0 is a header; images are keys `1..first_identity_record`.
    Legacy {
        /// Key of the first identity record (one past the last image).
        images_end: u64,
    },
    /// Every record is an image.
    Plain,
}

/// A pack opened for random access: the index in memory, the records on disk.
pub struct RecordPack {
    rec_path: PathBuf,
    file_len: u64,
    index: BTreeMap<u64, u64>,
    /// The layout detected from record 0.
    pub layout: Layout,
    /// Keys of the image records, in key order.
    pub image_keys: Vec<u64>,
    /// `property`'s (classes, height, width), when the file is there.
    pub property: Option<(usize, usize, usize)>,
}

impl RecordPack {
    /// Open `dir/train.rec` with `dir/train.idx` (and `dir/property` when present).
    pub fn open(dir: &Path) -> Result<Self> {
        let rec_path = dir.join("train.rec");
        let idx_path = dir.join("train.idx");
        let idx_text = std::fs::read_to_string(&idx_path)
            .with_context(|| format!("cannot read {}", idx_path.display()))?;
        let index = parse_index(&idx_text, &idx_path.display().to_string())?;
        let file_len = std::fs::metadata(&rec_path)
            .with_context(|| format!("cannot read {}", rec_path.display()))?
            .len();
        if let Some((k, o)) = index.iter().find(|(_, &o)| o >= file_len) {
            bail!(
                "{}: key {k} points at byte {o}, past the end of {} ({file_len} bytes)",
                idx_path.display(),
                rec_path.display()
            );
        }
        let property = match std::fs::read_to_string(dir.join("property")) {
            Ok(text) => Some(parse_property(&text, &dir.join("property"))?),
            Err(_) => None,
        };
        let mut pack = RecordPack {
            rec_path,
            file_len,
            index,
            layout: Layout::Plain,
            image_keys: vec![],
            property,
        };
        let first = match pack.index.keys().next() {
            Some(&k) => pack.read(k)?,
            None => bail!("{}: the index is empty", idx_path.display()),
        };
        // A legacy header is record 0 with two labels [first identity record, end)
        // and no image; an image record always has image bytes.
        let header0 = ImageHeader::unpack(&first)
            .ok()
            .filter(|(h, image)| {
                image.is_empty() && h.flag == 2 && h.labels[0] >= 1.0 && h.labels[1] >= h.labels[0]
            })
            .map(|(h, _)| h);
        pack.layout = match header0 {
            Some(h) if pack.index.contains_key(&0) => Layout::Legacy {
                images_end: h.labels[0] as u64,
            },
            _ => Layout::Plain,
        };
        pack.image_keys = match pack.layout {
            Layout::Legacy { images_end } => {
                let keys: Vec<u64> = (1..images_end).collect();
                if let Some(k) = keys.iter().find(|k| !pack.index.contains_key(k)) {
                    bail!(
                        "{}: the header says images are keys 1..{images_end}, but key {k} is not in the index",
                        idx_path.display()
                    );
                }
                keys
            }
            Layout::Plain => pack.index.keys().copied().collect(),
        };
        Ok(pack)
    }

    /// The payload of record `key`.
    pub fn read(&self, key: u64) -> Result<Vec<u8>> {
        let &offset = self
            .index
            .get(&key)
            .with_context(|| format!("{}: no record with key {key}", self.rec_path.display()))?;
        let mut f = File::open(&self.rec_path)
            .with_context(|| format!("cannot read {}", self.rec_path.display()))?;
        read_record(&mut f, offset, self.file_len)
            .with_context(|| format!("{} record {key}", self.rec_path.display()))
    }

    /// The header and encoded image of image record `key`.
    pub fn image(&self, key: u64) -> Result<(ImageHeader, Vec<u8>)> {
        let payload = self.read(key)?;
        let (h, img) = ImageHeader::unpack(&payload)
            .with_context(|| format!("{} record {key}", self.rec_path.display()))?;
        Ok((h, img.to_vec()))
    }
}

/// Parse `property`: `classes,height,width`.
pub fn parse_property(text: &str, path: &Path) -> Result<(usize, usize, usize)> {
    let v: Vec<usize> = text
        .trim()
        .split(',')
        .map(|s| s.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "{}: expected `classes,height,width`, got `{}`",
                path.display(),
                text.trim()
            )
        })?;
    match v[..] {
        [c, h, w] => Ok((c, h, w)),
        _ => bail!(
            "{}: expected 3 numbers `classes,height,width`, got {}",
            path.display(),
            v.len()
        ),
    }
}

/// Writes a pack in the legacy layout, which insightface's own tools read:
/// images as records `1..=n`, then one identity record per class, then the
/// header as record 0 (its offset written first to the index). The files are
/// written under temporary names and renamed when [`PackWriter::finish`] succeeds.
pub struct PackWriter {
    dir: PathBuf,
    rec: std::io::BufWriter<File>,
    offset: u64,
    index: Vec<(u64, u64)>,
    labels: Vec<usize>,
    size: (usize, usize),
}

impl PackWriter {
    /// Start a pack in `dir` of images `height x width`.
    pub fn create(dir: &Path, height: usize, width: usize) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let tmp = dir.join("train.rec.tmp");
        let rec = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut w = PackWriter {
            dir: dir.into(),
            rec: std::io::BufWriter::new(rec),
            offset: 0,
            index: vec![],
            labels: vec![],
            size: (height, width),
        };
        // Record 0 is rewritten at the end; reserve it with a header of the final size.
        w.write(0, &ImageHeader::multi(vec![0.0, 0.0], 0).pack(&[]))?;
        Ok(w)
    }

    fn write(&mut self, key: u64, payload: &[u8]) -> Result<()> {
        let bytes = encode_record(payload)?;
        self.rec.write_all(&bytes)?;
        self.index.push((key, self.offset));
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Append one encoded image of identity `label` (labels must come grouped, in order).
    pub fn add(&mut self, label: usize, encoded: &[u8]) -> Result<()> {
        if self.labels.last().is_some_and(|&l| l > label) {
            bail!("pack writer: identity {label} after identity {}; images must be grouped by identity in order", self.labels.last().unwrap_or(&0));
        }
        let key = self.labels.len() as u64 + 1;
        self.write(key, &ImageHeader::single(label as f32, key).pack(encoded))?;
        self.labels.push(label);
        Ok(())
    }

    /// Write the identity records and the header, the index and `property`; rename into place.
    pub fn finish(mut self) -> Result<()> {
        let n = self.labels.len() as u64;
        let classes = self.labels.last().map_or(0, |&l| l + 1);
        let first_identity = n + 1;
        let mut start = 0usize;
        for class in 0..classes {
            let end = start
                + self.labels[start..]
                    .iter()
                    .take_while(|&&l| l == class)
                    .count();
            let range = vec![start as f32 + 1.0, end as f32 + 1.0];
            let key = first_identity + class as u64;
            self.write(key, &ImageHeader::multi(range, key).pack(&[]))?;
            start = end;
        }
        let end = first_identity + classes as u64;
        // The header goes where it was reserved: same size, so only its bytes change.
        let header = encode_record(
            &ImageHeader::multi(vec![first_identity as f32, end as f32], 0).pack(&[]),
        )?;
        self.rec.flush()?;
        let mut f = self.rec.into_inner().map_err(|e| e.into_error())?;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(&header)?;
        f.sync_all()?;
        drop(f);
        let mut idx = String::new();
        let mut sorted = self.index;
        sorted.sort_unstable();
        for (k, o) in sorted {
            idx.push_str(&format!("{k}\t{o}\n"));
        }
        let (h, w) = self.size;
        nn::checkpoint::write_atomic(&self.dir.join("train.idx"), idx.as_bytes())?;
        nn::checkpoint::write_atomic(
            &self.dir.join("property"),
            format!("{classes},{h},{w}").as_bytes(),
        )?;
        std::fs::rename(self.dir.join("train.rec.tmp"), self.dir.join("train.rec")).with_context(
            || {
                format!(
                    "cannot rename into {}",
                    self.dir.join("train.rec").display()
                )
            },
        )?;
        Ok(())
    }
}
