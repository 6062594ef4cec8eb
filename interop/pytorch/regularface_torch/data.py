"""The training images of a regularface data source (the `regularface.data`
JSON a checkpoint records), with the identity numbering the Rust tool gives
them, so the classifier's rows mean the same people on both sides
(`src/data/source.rs`, `images.rs`, `lfw.rs`, `mnist.rs`, `stream.rs`):

- `folder`: one sub-folder per identity, sorted by name, those with images;
  every tenth identity (index % 10 == 9) is held out, the rest renumbered;
- `lfw`: the people of `people.txt`'s folds other than the held-out one, in
  file order, images `<name>/<name>_<NNNN>.jpg`;
- `mnist`: the train split's IDX files (raw or gzip), labels 0..9;
- `rec`: insightface's RecordIO pack (legacy layout with identity records, or
  one image per record), identities numbered densely in label order.

Images are cropped to the input's aspect (largest centred crop), resized with a
triangle (bilinear) filter and normalised to (x - 127.5) / 128, as regularface
does; Pillow decodes JPEG/PNG/BMP, and binary PGM/PPM are read without it. The
synthetic generator exists only in Rust: train on it there, or on real data.
"""
import gzip
import io
import os
import struct

import numpy as np
import torch

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "pgm", "ppm", "pnm", "bmp")
RECORDIO_MAGIC = 0xCED7230A


class DataError(ValueError):
    """Data that cannot be read as the checkpoint's source (the message names the file)."""


def _read_pnm(data, where):
    """Binary PGM (P5) or PPM (P6), 8-bit, as an HxWxC uint8 array."""
    fields, pos = [], 0
    while len(fields) < 4:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while end < len(data) and not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    magic, w, h, maxval = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    if magic not in (b"P5", b"P6") or maxval != 255:
        raise DataError(f"{where}: only 8-bit binary PGM/PPM are read without Pillow")
    c = 1 if magic == b"P5" else 3
    pixels = np.frombuffer(data, np.uint8, h * w * c, pos + 1)
    return pixels.reshape(h, w, c)


def _decode(data, where):
    """Encoded image bytes as an HxWx3 (or HxWx1) uint8 array."""
    if data[:2] in (b"P5", b"P6"):
        return _read_pnm(data, where)
    try:
        from PIL import Image
    except ImportError as e:
        raise DataError(f"{where}: decoding JPEG/PNG/BMP needs Pillow (pip install pillow)") from e
    try:
        img = Image.open(io.BytesIO(data))
        img = img.convert("L" if img.mode in ("L", "I;16", "I") else "RGB")
    except Exception as e:
        raise DataError(f"{where}: cannot decode ({e})") from e
    a = np.asarray(img)
    return a[:, :, None] if a.ndim == 2 else a


def _luma(rgb):
    """Grey as regularface's decoder makes it: (2126 R + 7152 G + 722 B) / 10000 (Rec. 709)."""
    r, g, b = (rgb[:, :, i].astype(np.uint32) for i in range(3))
    return ((2126 * r + 7152 * g + 722 * b) // 10000).astype(np.uint8)[:, :, None]


def preprocess(pixels, c, h, w):
    """Largest centred crop with the aspect of w x h, resized to w x h, as a CHW uint8 tensor."""
    sh, sw = pixels.shape[:2]
    cw, ch = (sh * w // h, sh) if sw * h > sh * w else (sw, sw * h // w)
    cw, ch = max(cw, 1), max(ch, 1)
    x0, y0 = (sw - cw) // 2, (sh - ch) // 2
    crop = pixels[y0:y0 + ch, x0:x0 + cw]
    if crop.shape[2] != c:
        crop = (_luma(crop) if c == 1 else np.repeat(crop, 3, axis=2))
    if (ch, cw) != (h, w):
        from PIL import Image
        mode = "L" if c == 1 else "RGB"
        img = Image.fromarray(crop[:, :, 0] if c == 1 else crop, mode).resize((w, h), Image.BILINEAR)
        crop = np.asarray(img).reshape(h, w, c)
    return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))


class TrainingSet(torch.utils.data.Dataset):
    """`(image, label)` items: a CHW uint8 tensor and the class index regularface gives it."""

    def __init__(self, items, classes, input_chw, read):
        self.items, self.classes, self.input, self._read = items, classes, tuple(input_chw), read

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        source, label = self.items[i]
        return self._read(source, self.input), label


def _file_reader(path, chw):
    with open(path, "rb") as f:
        return preprocess(_decode(f.read(), path), *chw)


def _is_image(name):
    return name.rsplit(".", 1)[-1].lower() in IMAGE_EXTENSIONS and "." in name


def open_folder(root, chw):
    if not os.path.isdir(root):
        raise DataError(f"data folder {root} does not exist")
    identities = []
    for sub in sorted(os.listdir(root)):
        d = os.path.join(root, sub)
        if os.path.isdir(d):
            imgs = [os.path.join(d, f) for f in sorted(os.listdir(d))
                    if _is_image(f) and os.path.isfile(os.path.join(d, f))]
            if imgs:
                identities.append(imgs)
    kept = [imgs for i, imgs in enumerate(identities) if i % 10 != 9]
    items = [(p, label) for label, imgs in enumerate(kept) for p in imgs]
    return TrainingSet(items, len(kept), chw, _file_reader)


def open_lfw(root, fold, chw):
    path = os.path.join(root, "people.txt")
    with open(path) as f:
        lines = [(n + 1, ln.strip()) for n, ln in enumerate(f) if ln.strip()]
    folds, at, people = int(lines[0][1]), 1, []
    for _ in range(folds):
        count = int(lines[at][1])
        group = []
        for ln, text in lines[at + 1:at + 1 + count]:
            name, k = text.split()
            group.append((name, int(k)))
        people.append(group)
        at += 1 + count
    names = [p for f, group in enumerate(people) if f != fold for p in group]
    items = [(os.path.join(root, name, f"{name}_{n:04d}.jpg"), label)
             for label, (name, k) in enumerate(names) for n in range(1, k + 1)]
    return TrainingSet(items, len(names), chw, _file_reader)


def _idx(root, stem, number):
    for name in (f"train-{stem}-idx{number}-ubyte.gz", f"train-{stem}-idx{number}-ubyte"):
        p = os.path.join(root, name)
        if os.path.exists(p):
            with (gzip.open if p.endswith(".gz") else open)(p, "rb") as f:
                data = f.read()
            dims = data[3]
            shape = struct.unpack(f">{dims}I", data[4:4 + 4 * dims])
            return np.frombuffer(data, np.uint8, int(np.prod(shape)), 4 + 4 * dims).reshape(shape)
    raise DataError(f"no MNIST train {stem} file in {root}")


def open_mnist(root, chw):
    if tuple(chw) != (1, 28, 28):
        raise DataError("MNIST images are 1x28x28")
    images, labels = _idx(root, "images", 3), _idx(root, "labels", 1)
    items = [(i, int(labels[i])) for i in range(len(labels))]
    return TrainingSet(items, 10, chw, lambda i, _: torch.from_numpy(images[i].copy())[None])


class RecordPack:
    """An insightface `train.rec` with its `train.idx` (key TAB offset per line)."""

    def __init__(self, root):
        self.rec = os.path.join(root, "train.rec")
        self.index = {}
        with open(os.path.join(root, "train.idx")) as f:
            for n, line in enumerate(f):
                if line.strip():
                    k, o = line.split("\t")
                    self.index[int(k)] = int(o)
        self._file = None

    def read(self, key):
        """The record's payload, its parts (continuation flags 1, 2, 3) joined by the magic."""
        if self._file is None:  # opened per process, after DataLoader workers fork
            self._file = open(self.rec, "rb")
        f, payload = self._file, b""
        f.seek(self.index[key])
        while True:
            magic, lrec = struct.unpack("<II", f.read(8))
            if magic != RECORDIO_MAGIC:
                raise DataError(f"{self.rec} record {key}: bad magic {magic:#010x}")
            flag, length = lrec >> 29, lrec & ((1 << 29) - 1)
            payload += f.read(length)
            if flag in (0, 3):
                return payload
            payload += struct.pack("<I", RECORDIO_MAGIC)

    @staticmethod
    def header(payload):
        """`(flag, label, labels, image bytes)` of an IRHeader payload."""
        flag, label = struct.unpack("<If", payload[:8])
        labels = struct.unpack(f"<{flag}f", payload[24:24 + 4 * flag])
        return flag, label, labels, payload[24 + 4 * flag:]


def open_rec(root, chw):
    pack = RecordPack(root)
    first = pack.header(pack.read(min(pack.index)))
    flag, _, labels, image = first
    if 0 in pack.index and not image and flag == 2 and 1.0 <= labels[0] <= labels[1]:
        images_end, raw = int(labels[0]), {}
        key = images_end
        while key in pack.index:
            start, end = (int(v) for v in pack.header(pack.read(key))[2])
            for k in range(start, end):
                raw[k] = float(key - images_end)
            key += 1
        keys = list(range(1, images_end))
        raw = [raw[k] for k in keys]
    else:
        keys = sorted(pack.index)
        raw = []
        for k in keys:
            _, label, labels, _ = pack.header(pack.read(k))
            raw.append(labels[0] if labels else label)
    dense = {v: i for i, v in enumerate(sorted(set(raw)))}
    items = [(k, dense[v]) for k, v in zip(keys, raw)]

    def read(key, chw):
        return preprocess(_decode(pack.header(pack.read(key))[3], f"{pack.rec} record {key}"), *chw)

    return TrainingSet(items, len(dense), chw, read)


def open_training_set(spec, chw):
    """The training images of data source `spec` (a `regularface.data` dict) at input (c, h, w)."""
    kind = spec["kind"]
    if kind == "folder":
        return open_folder(spec["root"], chw)
    if kind == "lfw":
        return open_lfw(spec["root"], spec["fold"], chw)
    if kind == "mnist":
        return open_mnist(spec["root"], chw)
    if kind == "rec":
        return open_rec(spec["root"], chw)
    if kind == "synthetic":
        raise DataError("the run trained on regularface's synthetic generator, which exists only in Rust; "
                        "continue it there, or train on an image folder, LFW, MNIST or a RecordIO pack")
    raise DataError(f"unknown data source kind {kind!r}")


def normalise(images_u8):
    """`(x - 127.5) / 128` as float32."""
    return (images_u8.float() - 127.5) / 128.0
