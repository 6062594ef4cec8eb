//! Example 3: RegularFace's exclusive regularizer on a toy classifier.
//!
//! `cargo run --release --example 03_exclusive_regularizer`
//!
//! Ten class weights start clustered in 3-d. Gradient descent on
//! L_r(W) = (1/C) Σ_i max_{j≠i} cos(W_i, W_j) alone spreads them over the
//! sphere: watch the mean and spread of Sep_i (each class's cosine to its
//! nearest neighbour) fall. This is the force the regularizer adds to a face
//! classifier during training.

use autograd::Param;
use facelosses::{exclusive_regularizer, SeparabilityStats};
use tensor::{Rng, Tensor};

fn main() {
    let mut rng = Rng::new(7);
    let w = Param::new(
        Tensor::<f64>::rand_normal(&[10, 3], 0.0, 0.2, &mut rng)
            .add(&Tensor::from_vec(&[3], vec![1.0, 0.5, 0.0]).unwrap()),
    );
    println!(
        "{:>5} {:>10} {:>10} {:>10}",
        "step", "L_r", "Sep mean", "Sep std"
    );
    for step in 0..=1000 {
        w.zero_grad();
        let (loss, nn) = exclusive_regularizer(&w.var());
        loss.backward().unwrap();
        if step % 200 == 0 {
            let s = SeparabilityStats::from_values(&nn.sep, 10);
            println!(
                "{step:>5} {:>10.4} {:>10.4} {:>10.4}",
                loss.value().item().unwrap(),
                s.mean,
                s.std
            );
        }
        let g = w.grad().clone().unwrap();
        w.value_mut().scale_add_assign(1.0, &g, -0.5);
    }
    println!(
        "(ten points on a sphere cannot all be orthogonal: the best arrangement, Tammes' problem, has a smallest angle of about 66°, i.e. Sep ≈ 0.40)"
    );
}
