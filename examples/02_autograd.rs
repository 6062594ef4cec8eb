//! Example 2: reverse-mode differentiation in one screen.
//!
//! `cargo run --release --example 02_autograd`
//!
//! Builds a scalar expression, takes its gradient, checks it against finite
//! differences with `gradcheck`, then defines a custom op (a "soft sign"
//! x / (1 + |x|)) by its forward and backward, exactly as `facelosses` defines
//! its fused losses, and checks that too.

use autograd::{gradcheck, Tolerance, Var};
use tensor::Tensor;

fn main() {
    // f(a, b) = sum(a · b + exp(a))  ⇒  df/da = b + exp(a),  df/db = a
    let a = Var::leaf(Tensor::<f64>::from_vec(&[3], vec![0.0, 1.0, -1.0]).unwrap());
    let b = Var::leaf(Tensor::<f64>::from_vec(&[3], vec![2.0, 3.0, 4.0]).unwrap());
    let f = a.mul(&b).add(&a.exp()).sum();
    let grads = f.backward().unwrap();
    println!("f = {}", f.value().item().unwrap());
    println!("df/da = {:?}", grads.get(&a).unwrap().to_vec());
    println!("df/db = {:?}", grads.get(&b).unwrap().to_vec());

    // A custom op: forward computed with tensor ops, backward given by hand.
    // y = x / (1 + |x|)  ⇒  dy/dx = 1 / (1 + |x|)²
    fn soft_sign(x: &Var<f64>) -> Var<f64> {
        let denom = x.value().abs().add_scalar(1.0);
        let y = x.value().div(&denom);
        Var::from_op("soft_sign", y, &[x], move |g| {
            vec![Some(g.div(&denom.mul(&denom)))]
        })
    }
    let report = gradcheck(
        |v| soft_sign(&v[0]).mul(&v[0]).sum(),
        &[Tensor::from_vec(&[4], vec![-2.0, -0.3, 0.4, 1.5]).unwrap()],
        Tolerance::SMOOTH,
    );
    println!("gradcheck of the custom op:\n{report}");
    assert!(report.passed());
}
