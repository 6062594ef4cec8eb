//! ONNX export of an inference graph, with a small hand-written protobuf
//! encoder for the few messages it needs (no protoc, no generated code).
//!
//! Each layer describes itself through [`Module::export_onnx`]: it appends
//! its nodes and initialisers to an [`OnnxGraph`] and returns the name of its
//! output. Call it in evaluation mode after [`Module::fold_batchnorm`]: folded
//! BatchNorms export as nothing, their layers with the folded weights.
//!
//! # Wire format
//!
//! Field numbers from `onnx/onnx.proto` (proto2): `ModelProto` {1 ir_version,
//! 2 producer_name, 3 producer_version, 7 graph, 8 opset_import, 14
//! metadata_props}; `GraphProto` {1 node, 2 name, 5 initializer, 11 input, 12
//! output}; `NodeProto` {1 input, 2 output, 3 name, 4 op_type, 5 attribute};
//! `AttributeProto` {1 name, 2 f, 3 i, 8 ints, 20 type}; `TensorProto` {1 dims,
//! 2 data_type, 8 name, 9 raw_data}; `ValueInfoProto` {1 name, 2 type};
//! `TypeProto` {1 tensor_type}; `TypeProto.Tensor` {1 elem_type, 2 shape};
//! `TensorShapeProto` {1 dim}; `Dimension` {1 dim_value, 2 dim_param};
//! `OperatorSetIdProto` {1 domain, 2 version}; `StringStringEntryProto` {1 key,
//! 2 value}. Repeated scalars are written unpacked, proto2's default, which
//! every protobuf parser accepts. Tensors are little-endian `raw_data`.
//!
//! [`Module::export_onnx`]: crate::Module::export_onnx
//! [`Module::fold_batchnorm`]: crate::Module::fold_batchnorm

use std::collections::BTreeMap;
use tensor::{Element, Tensor};

/// The operator set the graph uses.
pub const OPSET: i64 = 13;
/// The IR version that goes with opset 13.
pub const IR_VERSION: i64 = 7;

/// ONNX `TensorProto.DataType` of f32.
const FLOAT: i64 = 1;
/// ONNX `TensorProto.DataType` of i64.
const INT64: i64 = 7;

/// Protobuf encoding of one message: fields appended in order.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn tag(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }
    /// An int32/int64/enum field (negative values as ten-byte varints, as protobuf does).
    fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.tag(field, 0);
        self.varint(v as u64);
        self
    }
    fn float(&mut self, field: u32, v: f32) -> &mut Self {
        self.tag(field, 5);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn bytes(&mut self, field: u32, b: &[u8]) -> &mut Self {
        self.tag(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }
    fn string(&mut self, field: u32, s: &str) -> &mut Self {
        self.bytes(field, s.as_bytes())
    }
    fn message(&mut self, field: u32, m: &Message) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// A node attribute.
#[derive(Debug, Clone)]
pub enum Attr {
    /// `INT` attribute.
    Int(&'static str, i64),
    /// `INTS` attribute.
    Ints(&'static str, Vec<i64>),
    /// `FLOAT` attribute.
    Float(&'static str, f32),
}

impl Attr {
    fn encode(&self) -> Message {
        let mut m = Message::default();
        match self {
            Attr::Int(name, v) => {
                m.string(1, name).int(3, *v).int(20, 2);
            }
            Attr::Float(name, v) => {
                m.string(1, name).float(2, *v).int(20, 1);
            }
            Attr::Ints(name, vs) => {
                m.string(1, name);
                vs.iter().for_each(|v| {
                    m.int(8, *v);
                });
                m.int(20, 7);
            }
        }
        m
    }
}

/// A graph under construction: nodes in order, initialisers, and the rank of
/// every value (layers whose ONNX form depends on it ask, e.g. PRelu's slope).
#[derive(Default)]
pub struct OnnxGraph {
    nodes: Vec<Message>,
    initializers: Vec<Message>,
    ranks: BTreeMap<String, usize>,
    taken: BTreeMap<String, usize>,
}

impl OnnxGraph {
    /// An empty graph whose input `input` has rank `rank`.
    pub fn new(input: &str, rank: usize) -> Self {
        let mut g = OnnxGraph::default();
        g.ranks.insert(input.to_string(), rank);
        g.taken.insert(input.to_string(), 1);
        g
    }

    /// A name not used yet, from `hint` (the hint itself the first time).
    fn fresh(&mut self, hint: &str) -> String {
        let hint = if hint.is_empty() { "value" } else { hint };
        let n = self.taken.entry(hint.to_string()).or_insert(0);
        *n += 1;
        if *n == 1 {
            hint.to_string()
        } else {
            format!("{hint}_{}", *n - 1)
        }
    }

    /// The rank of a value produced so far.
    pub fn rank(&self, value: &str) -> usize {
        self.ranks.get(value).copied().unwrap_or(0)
    }

    /// Add a float initialiser named from `hint`, reshaped to `dims`; returns its name.
    pub fn constant<T: Element>(&mut self, hint: &str, t: &Tensor<T>, dims: &[usize]) -> String {
        assert_eq!(
            dims.iter().product::<usize>(),
            t.len(),
            "ONNX initialiser `{hint}`: {:?} values cannot be shaped {dims:?}",
            t.shape()
        );
        let name = self.fresh(hint);
        let raw: Vec<u8> = t
            .to_vec()
            .iter()
            .flat_map(|v| (v.to_f64().unwrap_or(f64::NAN) as f32).to_le_bytes())
            .collect();
        let mut m = Message::default();
        dims.iter().for_each(|&d| {
            m.int(1, d as i64);
        });
        m.int(2, FLOAT).string(8, &name).bytes(9, &raw);
        self.initializers.push(m);
        self.ranks.insert(name.clone(), dims.len());
        name
    }

    /// Add an int64 initialiser (shapes for `Reshape`); returns its name.
    pub fn constant_i64(&mut self, hint: &str, values: &[i64]) -> String {
        let name = self.fresh(hint);
        let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut m = Message::default();
        m.int(1, values.len() as i64)
            .int(2, INT64)
            .string(8, &name)
            .bytes(9, &raw);
        self.initializers.push(m);
        self.ranks.insert(name.clone(), 1);
        name
    }

    /// Append `op_type(inputs)` with `attrs`; its output, named from `hint`,
    /// has rank `rank`. Returns the output's name.
    pub fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: &[Attr],
        hint: &str,
        rank: usize,
    ) -> String {
        let out = self.fresh(hint);
        let mut m = Message::default();
        inputs.iter().for_each(|i| {
            m.string(1, i);
        });
        m.string(2, &out).string(3, &out).string(4, op_type);
        attrs.iter().for_each(|a| {
            m.message(5, &a.encode());
        });
        self.nodes.push(m);
        self.ranks.insert(out.clone(), rank);
        out
    }

    /// `[N, ...]` to `[N, rest]` (ONNX `Flatten`, axis 1); returns the output's name.
    pub fn flatten(&mut self, x: &str, hint: &str) -> String {
        self.node("Flatten", &[x], &[Attr::Int("axis", 1)], hint, 2)
    }

    /// The model: input `input` of shape `input_dims` (a `None` dimension is
    /// the symbolic `batch`), output `output` of shape `output_dims`, and
    /// `metadata` as `metadata_props`.
    pub fn finish(
        self,
        input: &str,
        input_dims: &[Option<usize>],
        output: &str,
        output_dims: &[Option<usize>],
        metadata: &[(String, String)],
    ) -> Vec<u8> {
        let value_info = |name: &str, dims: &[Option<usize>]| {
            let mut shape = Message::default();
            for d in dims {
                let mut dim = Message::default();
                match d {
                    Some(v) => dim.int(1, *v as i64),
                    None => dim.string(2, "batch"),
                };
                shape.message(1, &dim);
            }
            let mut tensor_type = Message::default();
            tensor_type.int(1, FLOAT).message(2, &shape);
            let mut ty = Message::default();
            ty.message(1, &tensor_type);
            let mut vi = Message::default();
            vi.string(1, name).message(2, &ty);
            vi
        };
        let mut graph = Message::default();
        self.nodes.iter().for_each(|n| {
            graph.message(1, n);
        });
        graph.string(2, "regularface");
        self.initializers.iter().for_each(|t| {
            graph.message(5, t);
        });
        graph.message(11, &value_info(input, input_dims));
        graph.message(12, &value_info(output, output_dims));
        let mut opset = Message::default();
        opset.string(1, "").int(2, OPSET);
        let mut model = Message::default();
        model
            .int(1, IR_VERSION)
            .string(2, "regularface")
            .string(3, env!("CARGO_PKG_VERSION"))
            .message(7, &graph)
            .message(8, &opset);
        for (k, v) in metadata {
            let mut e = Message::default();
            e.string(1, k).string(2, v);
            model.message(14, &e);
        }
        model.0
    }
}

/// Why a module could not be exported.
pub type ExportResult = Result<String, String>;
