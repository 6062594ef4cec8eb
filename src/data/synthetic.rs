//! The synthetic face-identity generator: the embedded default data set.
//!
//! Each identity is a parametric face drawn from a seed: head shape and
//! proportions, skin tone, hair colour and hairline, eye spacing, size, height
//! and iris colour, brow thickness and slant, nose length and width, mouth
//! width, height and curvature. Each image renders that face under jitter:
//! in-plane rotation, translation, scale, a yaw that shifts and squeezes the
//! features, expression (mouth curve, eye opening), a directional light, a
//! random background and sensor noise. Identities differ by a few percent in
//! several parameters while the jitter moves every pixel, so the classes are
//! far from linearly separable in pixel space: a network has to learn which
//! proportions are stable under pose and light, as with real faces.
//! Everything is deterministic from (seed, identity, image index).

use super::{FaceSet, Pair};
use rayon::prelude::*;
use tensor::Rng;

/// Parameters of one identity (units: fractions of the image height).
#[derive(Debug, Clone, Copy)]
struct Identity {
    face_w: f64,
    face_h: f64,
    skin: [f64; 3],
    hair: [f64; 3],
    hairline: f64,
    eye_dx: f64,
    eye_y: f64,
    eye_r: f64,
    iris: [f64; 3],
    brow_t: f64,
    brow_slant: f64,
    nose_len: f64,
    nose_w: f64,
    mouth_y: f64,
    mouth_w: f64,
    mouth_curve: f64,
}

fn lerp(a: f64, b: f64, t: f64) -> f64 {
    a + (b - a) * t
}

impl Identity {
    fn new(rng: &mut Rng) -> Self {
        let mut u = |a: f64, b: f64| lerp(a, b, rng.uniform());
        let tone = u(0.0, 1.0);
        let skin = [
            lerp(0.92, 0.45, tone),
            lerp(0.78, 0.30, tone),
            lerp(0.68, 0.22, tone),
        ];
        let hair_tone = u(0.0, 1.0);
        let hair = [
            lerp(0.08, 0.75, hair_tone) * u(0.8, 1.0),
            lerp(0.06, 0.55, hair_tone),
            lerp(0.05, 0.30, hair_tone),
        ];
        Identity {
            face_w: u(0.27, 0.35),
            face_h: u(0.36, 0.44),
            skin: [
                skin[0] + u(-0.04, 0.04),
                skin[1] + u(-0.04, 0.04),
                skin[2] + u(-0.04, 0.04),
            ],
            hair,
            hairline: u(0.05, 0.22),
            eye_dx: u(0.09, 0.14),
            eye_y: u(-0.10, -0.02),
            eye_r: u(0.025, 0.042),
            iris: [u(0.1, 0.5), u(0.1, 0.5), u(0.1, 0.6)],
            brow_t: u(0.008, 0.022),
            brow_slant: u(-0.25, 0.25),
            nose_len: u(0.07, 0.14),
            nose_w: u(0.025, 0.05),
            mouth_y: u(0.12, 0.20),
            mouth_w: u(0.07, 0.13),
            mouth_curve: u(-0.05, 0.05),
        }
    }
}

/// Generator settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SyntheticConfig {
    /// Number of identities.
    pub identities: usize,
    /// Images per identity.
    pub images_per_identity: usize,
    /// Output height.
    pub height: usize,
    /// Output width.
    pub width: usize,
    /// Seed of the whole set.
    pub seed: u64,
    /// Jitter strength (1 = the default difficulty).
    pub difficulty: f64,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        SyntheticConfig {
            identities: 200,
            images_per_identity: 20,
            height: 56,
            width: 48,
            seed: 1,
            difficulty: 1.0,
        }
    }
}

/// Render image `index` of identity `id` (RGB, CHW bytes).
fn render(p: &Identity, h: usize, w: usize, rng: &mut Rng, difficulty: f64) -> Vec<u8> {
    let d = difficulty;
    let mut u = |a: f64, b: f64| lerp(a, b, rng.uniform());
    let angle = u(-0.2, 0.2) * d;
    let (tx, ty) = (u(-0.05, 0.05) * d, u(-0.05, 0.05) * d);
    let scale = 1.0 + u(-0.08, 0.08) * d;
    let yaw = u(-0.35, 0.35) * d;
    let smile = p.mouth_curve + u(-0.03, 0.03) * d;
    let eye_open = u(0.55, 1.0);
    let light_dir = u(0.0, std::f64::consts::TAU);
    let light = u(0.0, 0.45) * d;
    let ambient = u(0.75, 1.15);
    let bg = [u(0.1, 0.9), u(0.1, 0.9), u(0.1, 0.9)];
    let bg_grad = u(-0.3, 0.3);
    let noise = u(0.02, 0.06) * d;
    let (sin, cos) = angle.sin_cos();
    let aspect = w as f64 / h as f64;
    let mut out = vec![0u8; 3 * h * w];
    for r in 0..h {
        for c in 0..w {
            // Image coordinates centred, in units of the height; then the inverse pose.
            let (x0, y0) = (
                (c as f64 + 0.5) / h as f64 - 0.5 * aspect,
                (r as f64 + 0.5) / h as f64 - 0.5,
            );
            let (x1, y1) = ((x0 - tx) / scale, (y0 - ty) / scale);
            let (x, y) = (cos * x1 + sin * y1, -sin * x1 + cos * y1);
            // Yaw: features slide sideways and the far side narrows.
            let fx = x - yaw * 0.12 * (1.0 - (y / p.face_h).powi(2)).max(0.0);
            let squeeze = 1.0 + yaw * fx.signum() * 0.25;
            let mut col = [
                bg[0] + bg_grad * y0,
                bg[1] + bg_grad * y0,
                bg[2] - bg_grad * y0,
            ];
            let face = (x / p.face_w).powi(2) + (y / p.face_h).powi(2);
            let hair = (x / (p.face_w * 1.12)).powi(2) + ((y + 0.03) / (p.face_h * 1.1)).powi(2);
            if hair < 1.0 && y < -p.face_h + p.hairline + 0.1 * (x / p.face_w).powi(2) {
                col = p.hair;
            } else if face < 1.0 {
                col = p.skin;
                let ex = (fx.abs() - p.eye_dx) * squeeze;
                let ey = y - p.eye_y;
                let eye = (ex / (p.eye_r * 1.5)).powi(2) + (ey / (p.eye_r * eye_open)).powi(2);
                let brow_y = p.eye_y - p.eye_r * 1.8 + p.brow_slant * ex.abs() * 0.3;
                let mouth_curve_y = p.mouth_y + smile * (1.0 - (fx / p.mouth_w).powi(2));
                if eye < 1.0 {
                    col = if ex * ex + ey * ey < (p.eye_r * 0.6).powi(2) {
                        p.iris
                    } else {
                        [0.95, 0.95, 0.95]
                    };
                } else if ex.abs() < p.eye_r * 1.6 && (y - brow_y).abs() < p.brow_t {
                    col = [p.hair[0] * 0.8, p.hair[1] * 0.8, p.hair[2] * 0.8];
                } else if fx.abs() < p.mouth_w
                    && (y - mouth_curve_y).abs() < 0.012 + 0.006 * (1.0 - (fx / p.mouth_w).powi(2))
                {
                    col = [p.skin[0] * 0.65, p.skin[1] * 0.35, p.skin[2] * 0.35];
                } else if y > p.eye_y
                    && y < p.eye_y + p.nose_len
                    && fx.abs() < p.nose_w * (y - p.eye_y) / p.nose_len
                {
                    let shade = 0.82 + 0.1 * fx.signum() * yaw.signum();
                    col = [p.skin[0] * shade, p.skin[1] * shade, p.skin[2] * shade];
                }
            }
            let lit = ambient + light * (x0 * light_dir.cos() + y0 * light_dir.sin()) * 2.0;
            for (ch, v) in col.iter().enumerate() {
                let value = (v * lit + noise * rng.normal()).clamp(0.0, 1.0);
                out[ch * h * w + r * w + c] = (value * 255.0).round() as u8;
            }
        }
    }
    out
}

/// Generate `identities x images_per_identity` images, identity-major.
pub fn generate(cfg: &SyntheticConfig) -> FaceSet {
    let idents: Vec<Identity> = (0..cfg.identities)
        .map(|i| {
            Identity::new(&mut Rng::new(
                cfg.seed ^ (0x1D00 + i as u64).wrapping_mul(0x9E37_79B9),
            ))
        })
        .collect();
    let images: Vec<Vec<u8>> = (0..cfg.identities * cfg.images_per_identity)
        .into_par_iter()
        .map(|k| {
            let (id, j) = (k / cfg.images_per_identity, k % cfg.images_per_identity);
            let mut rng =
                Rng::new(cfg.seed.wrapping_mul(1_000_003) ^ ((id as u64) << 20 | j as u64));
            render(&idents[id], cfg.height, cfg.width, &mut rng, cfg.difficulty)
        })
        .collect();
    let mut set = FaceSet::empty(3, cfg.height, cfg.width);
    set.class_names = (0..cfg.identities)
        .map(|i| format!("synthetic_{i:05}"))
        .collect();
    for (k, img) in images.iter().enumerate() {
        let (id, j) = (k / cfg.images_per_identity, k % cfg.images_per_identity);
        set.push(img, id, format!("synthetic_{id:05}/{j:04}"));
    }
    set
}

/// Ten folds of verification pairs over `set`, LFW-style: per fold `per_fold`
/// matched and `per_fold` mismatched pairs; identities are split into ten
/// disjoint groups so that no identity appears in two folds (when there are
/// at least 20 identities; with fewer, every fold uses all of them).
pub fn make_pairs(set: &FaceSet, per_fold: usize, seed: u64) -> Vec<Pair> {
    let mut rng = Rng::new(seed);
    let mut by_class: Vec<Vec<usize>> = vec![vec![]; set.classes()];
    (0..set.len()).for_each(|i| by_class[set.labels[i]].push(i));
    let mut classes: Vec<usize> = (0..set.classes())
        .filter(|&c| !by_class[c].is_empty())
        .collect();
    rng.shuffle(&mut classes);
    let mut pairs = vec![];
    for fold in 0..10 {
        // Identities split into ten disjoint groups, one per fold; with fewer
        // than 20 (MNIST's ten digits) every fold draws from all of them.
        let group: Vec<usize> = if classes.len() >= 20 {
            classes.iter().copied().skip(fold).step_by(10).collect()
        } else {
            classes.clone()
        };
        let multi: Vec<usize> = group
            .iter()
            .copied()
            .filter(|&c| by_class[c].len() >= 2)
            .collect();
        if group.len() < 2 || multi.is_empty() {
            continue;
        }
        for _ in 0..per_fold {
            let c = multi[rng.below(multi.len())];
            let imgs = &by_class[c];
            let a = rng.below(imgs.len());
            let b = (a + 1 + rng.below(imgs.len() - 1)) % imgs.len();
            pairs.push(Pair {
                a: imgs[a],
                b: imgs[b],
                same: true,
                fold,
            });
            let c1 = group[rng.below(group.len())];
            let c2 = loop {
                let c2 = group[rng.below(group.len())];
                if c2 != c1 {
                    break c2;
                }
            };
            let (i1, i2) = (&by_class[c1], &by_class[c2]);
            pairs.push(Pair {
                a: i1[rng.below(i1.len())],
                b: i2[rng.below(i2.len())],
                same: false,
                fold,
            });
        }
    }
    pairs
}
