//! Graph behaviour: errors, no_grad, gradient accumulation.

use autograd::{no_grad, AutogradError, Param, Var};
use tensor::Tensor;

#[test]
fn backward_needs_a_scalar() {
    let x = Var::leaf(Tensor::<f64>::ones(&[2, 2]));
    let err = x.mul_scalar(2.0).backward().err().unwrap();
    assert_eq!(err, AutogradError::NotScalar { shape: vec![2, 2] });
    assert!(err
        .to_string()
        .contains("must be a scalar, got shape [2, 2]"));
}

#[test]
fn a_consumed_graph_cannot_backward_again() {
    let x = Var::leaf(Tensor::<f64>::ones(&[3]));
    let h = x.exp();
    let loss = h.sum();
    loss.backward().unwrap();
    let err = loss.backward().err().unwrap();
    assert!(
        matches!(err, AutogradError::GraphConsumed { op: "sum" }),
        "{err:?}"
    );
    // Reusing an intermediate of the consumed graph in a new loss is caught too.
    let err = h.mul_scalar(2.0).sum().backward().err().unwrap();
    assert!(
        err.to_string().contains("op `exp` was already consumed"),
        "{err}"
    );
}

#[test]
fn no_grad_records_nothing() {
    let w = Param::new(Tensor::<f64>::ones(&[2]));
    let y = no_grad(|| w.var().mul_scalar(3.0).sum());
    assert!(!y.requires_grad());
    assert_eq!(y.backward().err(), Some(AutogradError::NoGradient));
    assert!(autograd::is_grad_enabled());
    // constants only: nothing recorded either
    assert!(!Var::constant(Tensor::<f64>::ones(&[2]))
        .exp()
        .requires_grad());
}

#[test]
fn parameter_gradients_accumulate_until_zeroed() {
    let w = Param::new(Tensor::<f64>::from_vec(&[2], vec![1.0, 2.0]).unwrap());
    w.var().mul(&w.var()).sum().backward().unwrap();
    w.var().sum().backward().unwrap();
    assert_eq!(w.grad().as_ref().unwrap().to_vec(), vec![3.0, 5.0]);
    w.zero_grad();
    assert_eq!(w.grad().as_ref().unwrap().to_vec(), vec![0.0, 0.0]);
}
