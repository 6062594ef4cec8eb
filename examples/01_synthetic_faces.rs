//! Example 1: the embedded synthetic face data set.
//!
//! `cargo run --release --example 01_synthetic_faces [OUT.png]`
//!
//! Generates 8 identities x 8 images with the default generator and writes
//! them as a grid (one row per identity) to a PNG, so you can see what the
//! default training data looks like: the same face under pose, scale, light,
//! expression and noise jitter along each row; different faces down the rows.

use regularface::data::synthetic::{generate, SyntheticConfig};

fn main() -> anyhow::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "synthetic_faces.png".into());
    let cfg = SyntheticConfig {
        identities: 8,
        images_per_identity: 8,
        height: 112,
        width: 96,
        ..Default::default()
    };
    let set = generate(&cfg);
    let (h, w) = (cfg.height, cfg.width);
    let (rows, cols) = (cfg.identities, cfg.images_per_identity);
    let mut grid = image::RgbImage::new((cols * w) as u32, (rows * h) as u32);
    for i in 0..set.len() {
        let (r, c) = (set.labels[i], i % cols);
        let img = set.image(i);
        for y in 0..h {
            for x in 0..w {
                let px = [
                    img[y * w + x],
                    img[h * w + y * w + x],
                    img[2 * h * w + y * w + x],
                ];
                grid.put_pixel((c * w + x) as u32, (r * h + y) as u32, image::Rgb(px));
            }
        }
    }
    grid.save(&out)?;
    println!("wrote {} identities x {} images to {out}", rows, cols);
    Ok(())
}
