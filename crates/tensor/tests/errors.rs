//! Shape errors name the op, both shapes and the axis at fault.

use tensor::conv::try_conv2d;
use tensor::{Conv2dParams, Tensor, TensorError};

fn t(shape: &[usize]) -> Tensor<f32> {
    Tensor::zeros(shape)
}

#[test]
fn broadcast_mismatch_names_op_shapes_and_axis() {
    let e = t(&[2, 3]).try_add(&t(&[4])).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("add")
            && msg.contains("[2, 3]")
            && msg.contains("[4]")
            && msg.contains("axis 1"),
        "{msg}"
    );
}

#[test]
fn matmul_mismatch_names_inner_sizes() {
    let msg = t(&[2, 3]).try_matmul(&t(&[4, 5])).unwrap_err().to_string();
    assert!(
        msg.starts_with("matmul")
            && msg.contains("[2, 3]")
            && msg.contains("[4, 5]")
            && msg.contains("3")
            && msg.contains("4"),
        "{msg}"
    );
    let msg = t(&[2, 3]).try_matmul(&t(&[3])).unwrap_err().to_string();
    assert!(msg.contains("two 2-D or two 3-D"), "{msg}");
    let msg = t(&[2, 3, 4])
        .try_matmul(&t(&[3, 4, 5]))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("axis 0") && msg.contains("batch"), "{msg}");
}

#[test]
fn conv_channel_mismatch_is_reported() {
    let e = try_conv2d(
        &t(&[1, 3, 8, 8]),
        &t(&[4, 2, 3, 3]),
        None,
        Conv2dParams::new(1, 1),
    )
    .unwrap_err();
    match &e {
        TensorError::ShapeMismatch { op, axis, .. } => {
            assert_eq!((*op, *axis), ("conv2d", Some(1)))
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(e.to_string().contains("3 channels"));
}

#[test]
fn other_ops_check_their_arguments() {
    assert!(t(&[2, 3])
        .try_reshape(&[4])
        .unwrap_err()
        .to_string()
        .contains("reshape"));
    assert!(t(&[2, 3])
        .try_permute(&[0, 0])
        .unwrap_err()
        .to_string()
        .contains("not a permutation"));
    assert!(t(&[2, 3])
        .try_slice_axis(1, 2, 5)
        .unwrap_err()
        .to_string()
        .contains("out of bounds"));
    assert!(t(&[2, 3])
        .try_sum_axis(2, false)
        .unwrap_err()
        .to_string()
        .contains("axis 2 out of range"));
    assert!(t(&[2, 3])
        .try_index_select(0, &[2])
        .unwrap_err()
        .to_string()
        .contains("index 2"));
    let msg = Tensor::try_concat(&[&t(&[2, 3]), &t(&[2, 4])], 0)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("concat") && msg.contains("axis 1"), "{msg}");
    assert!(t(&[1, 4, 2, 2]).try_prelu(&t(&[3])).is_err());
}

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] do not fit at axis 1")]
fn panicking_form_carries_the_same_message() {
    let _ = t(&[2, 3]).add(&t(&[4]));
}

#[test]
fn batched_matmul_with_an_empty_batch_is_empty() {
    // A batch of 1 broadcasts to the other side's 0: the product is empty and
    // nothing of the empty operand is read.
    let one = Tensor::<f32>::ones(&[1, 2, 3]);
    let empty = Tensor::<f32>::zeros(&[0, 3, 4]);
    assert_eq!(one.matmul(&empty).shape(), &[0, 2, 4]);
    let empty_lhs = Tensor::<f32>::zeros(&[0, 2, 3]);
    let one_rhs = Tensor::<f32>::ones(&[1, 3, 4]);
    assert_eq!(empty_lhs.matmul(&one_rhs).shape(), &[0, 2, 4]);
    // and 1 against 1 still multiplies
    let p = one.matmul(&one_rhs);
    assert_eq!((p.shape(), p.to_vec()[0]), (&[1, 2, 4][..], 3.0));
}
