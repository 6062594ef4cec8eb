//! A minimal reader of Python pickles: the opcodes that insightface's `.bin`
//! verification sets use, in every flavour found in the wild (protocol 2 from
//! Python 2 with `BINSTRING`s; protocol 2 from Python 3, where bytes are
//! `_codecs.encode(text, 'latin1')`; protocols 3-5 with `BINBYTES`; numpy
//! arrays via `numpy.core.multiarray._reconstruct` + `BUILD`, or protocol 5's
//! `numpy.core.numeric._frombuffer`). Nothing is executed: globals are names,
//! and only the few calls above are evaluated. Any other opcode is an error
//! naming it and its byte offset; every length is checked against the input
//! before anything is allocated. The memo holds copies (cheap: bytes are
//! shared), which is exact for what these files memoize and fetch.

use anyhow::{bail, Result};
use std::rc::Rc;

/// A value built by the pickle machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `None`.
    None,
    /// A bool.
    Bool(bool),
    /// An int that fits 64 bits.
    Int(i64),
    /// A float.
    Float(f64),
    /// Bytes (also Python 2 `str`, and `bytearray`).
    Bytes(Rc<Vec<u8>>),
    /// A unicode string.
    Str(String),
    /// A list.
    List(Vec<Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A dict, as its items.
    Dict(Vec<(Value, Value)>),
    /// A global, `module.name`, not resolved.
    Global(String),
    /// A numpy array: dtype string (e.g. `u1`), shape and raw bytes.
    Array {
        /// numpy's dtype name.
        dtype: String,
        /// Shape.
        shape: Vec<usize>,
        /// The data, C order.
        data: Rc<Vec<u8>>,
    },
    /// The result of calling a global with arguments (a numpy object under construction).
    Call(String, Vec<Value>),
}

/// Most containers (lists, tuples, dicts, calls) a pickle may build. A `.bin`
/// set holds a few dozen. The bound also bounds nesting: a value nested
/// tens of thousands deep overflowed the stack when it was dropped (`cargo
/// fuzz` found the SIGSEGV).
const MAX_CONTAINERS: usize = 1000;

/// Most values the memo may copy in all: each memo read copies the value, so
/// a few bytes that read a list back into itself repeatedly would double it
/// every time.
const MAX_COPIED_VALUES: usize = 1 << 20;

struct Machine<'a> {
    bytes: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: std::collections::HashMap<u64, Value>,
    containers: usize,
    copied: usize,
}

/// The number of values in `v`, itself included (nesting is at most
/// [`MAX_CONTAINERS`] deep, so the recursion is bounded).
fn count_values(v: &Value) -> usize {
    1 + match v {
        Value::List(items) | Value::Tuple(items) | Value::Call(_, items) => {
            items.iter().map(count_values).sum()
        }
        Value::Dict(pairs) => pairs
            .iter()
            .map(|(k, v)| count_values(k) + count_values(v))
            .sum(),
        _ => 0,
    }
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if n > self.bytes.len() - self.pos {
            bail!(
                "byte {}: {what} of {n} bytes runs past the end ({} bytes left)",
                self.pos,
                self.bytes.len() - self.pos
            );
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn uint(&mut self, width: usize, what: &str) -> Result<u64> {
        let b = self.take(width, what)?;
        Ok(b.iter().rev().fold(0u64, |v, &x| (v << 8) | x as u64))
    }
    fn line(&mut self) -> Result<String> {
        let rest = &self.bytes[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| anyhow::anyhow!("byte {}: GLOBAL name without a newline", self.pos))?;
        self.pos += end + 1;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
    fn pop(&mut self, at: usize) -> Result<Value> {
        if self.marks.last().is_some_and(|&m| m == self.stack.len()) {
            bail!("byte {at}: stack underflow at a mark");
        }
        self.stack
            .pop()
            .ok_or_else(|| anyhow::anyhow!("byte {at}: stack underflow"))
    }
    fn pop_mark(&mut self, at: usize) -> Result<Vec<Value>> {
        let m = self
            .marks
            .pop()
            .ok_or_else(|| anyhow::anyhow!("byte {at}: no MARK to pop to"))?;
        Ok(self.stack.split_off(m))
    }
    /// Count one more container, refusing past [`MAX_CONTAINERS`].
    fn container(&mut self, at: usize) -> Result<()> {
        self.containers += 1;
        if self.containers > MAX_CONTAINERS {
            bail!("byte {at}: more than {MAX_CONTAINERS} lists, tuples, dicts and calls; not a verification set");
        }
        Ok(())
    }
    /// Count `values` more copied by the memo, refusing past [`MAX_COPIED_VALUES`] in all.
    fn charge_copy(&mut self, at: usize, values: usize) -> Result<()> {
        self.copied += values;
        if self.copied > MAX_COPIED_VALUES {
            bail!("byte {at}: the memo copies more than {MAX_COPIED_VALUES} values; not a verification set");
        }
        Ok(())
    }
    fn top_mut(&mut self, at: usize) -> Result<&mut Value> {
        self.stack
            .last_mut()
            .ok_or_else(|| anyhow::anyhow!("byte {at}: stack underflow"))
    }
}

fn string(v: &Value) -> Option<&str> {
    match v {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// Evaluate `callable(args)` for the few callables a `.bin` file uses.
fn call(at: usize, f: Value, args: Value) -> Result<Value> {
    let (Value::Global(name), Value::Tuple(args)) = (&f, &args) else {
        bail!("byte {at}: REDUCE of {f:?} with {args:?} is not supported");
    };
    let short = name.rsplit('.').next().unwrap_or("");
    Ok(match (name.as_str(), short) {
        ("_codecs.encode", _) => match (&args[..], args.get(1).and_then(string)) {
            ([Value::Str(s), _], Some("latin1" | "latin-1")) => {
                let mut out = Vec::with_capacity(s.len());
                for c in s.chars() {
                    let c = c as u32;
                    if c > 255 {
                        bail!("byte {at}: _codecs.encode: character {c:#x} is not latin-1");
                    }
                    out.push(c as u8);
                }
                Value::Bytes(Rc::new(out))
            }
            _ => bail!("byte {at}: _codecs.encode with arguments {args:?} is not supported"),
        },
        (n, "_reconstruct" | "dtype" | "_frombuffer") if n.starts_with("numpy.") => {
            if short == "_frombuffer" {
                return frombuffer(at, args);
            }
            Value::Call(name.clone(), args.clone())
        }
        _ => bail!("byte {at}: call of `{name}` is not supported in a verification set"),
    })
}

/// The dtype name of a `numpy.dtype('u1', ...)` call value, or of a dtype string.
fn dtype_name(v: &Value) -> Option<String> {
    match v {
        Value::Call(n, a) if n.ends_with(".dtype") => a.first().and_then(string).map(String::from),
        Value::Str(s) => Some(s.clone()),
        _ => None,
    }
}

fn shape_of(v: &Value) -> Option<Vec<usize>> {
    match v {
        Value::Tuple(d) | Value::List(d) => d
            .iter()
            .map(|x| match x {
                Value::Int(i) if *i >= 0 => Some(*i as usize),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// A numpy array from the pickled `dtype` and `shape` values of `what` (the
/// call that built it, for messages) and its raw bytes.
fn array(at: usize, what: &str, dtype: &Value, shape: &Value, data: &Rc<Vec<u8>>) -> Result<Value> {
    let dtype =
        dtype_name(dtype).ok_or_else(|| anyhow::anyhow!("byte {at}: {what} without a dtype"))?;
    let shape =
        shape_of(shape).ok_or_else(|| anyhow::anyhow!("byte {at}: {what} without a shape"))?;
    let data = data.clone();
    let item = match dtype.trim_start_matches(['|', '<', '=']) {
        "u1" | "i1" | "b1" => 1,
        other => bail!("byte {at}: numpy array of dtype `{other}`; verification images are uint8"),
    };
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if n.map(|n| n * item) != Some(data.len()) {
        bail!(
            "byte {at}: numpy array of shape {shape:?} with {} bytes of data",
            data.len()
        );
    }
    Ok(Value::Array { dtype, shape, data })
}

fn frombuffer(at: usize, args: &[Value]) -> Result<Value> {
    match args {
        [Value::Bytes(data), dtype, shape, ..] => array(at, "_frombuffer", dtype, shape, data),
        _ => bail!("byte {at}: _frombuffer with arguments {args:?} is not supported"),
    }
}

/// Apply a `BUILD` state to `obj`.
fn build(at: usize, obj: Value, state: Value) -> Result<Value> {
    match obj {
        // numpy.dtype's state carries byte order and flags: nothing we need.
        Value::Call(ref n, _) if n.ends_with(".dtype") => Ok(obj),
        Value::Call(ref n, _) if n.ends_with("._reconstruct") => {
            let Value::Tuple(s) = state else {
                bail!("byte {at}: ndarray state is not a tuple");
            };
            match &s[..] {
                [_, shape, dtype, Value::Bool(false), Value::Bytes(data)] => {
                    array(at, "ndarray", dtype, shape, data)
                }
                _ => bail!("byte {at}: ndarray state {s:?} is not supported (C-order uint8 only)"),
            }
        }
        other => bail!("byte {at}: BUILD on {other:?} is not supported"),
    }
}

/// Run the pickle in `bytes` and return what it leaves (its `STOP` value).
pub fn load(bytes: &[u8]) -> Result<Value> {
    let mut m = Machine {
        bytes,
        pos: 0,
        stack: vec![],
        marks: vec![],
        memo: Default::default(),
        containers: 0,
        copied: 0,
    };
    loop {
        let at = m.pos;
        let op = *m.take(1, "opcode")?.first().expect("one byte");
        if matches!(op, b']' | b')' | b'}' | b't' | b'l' | 0x85..=0x87 | b'R') {
            m.container(at)?;
        }
        match op {
            0x80 => {
                let proto = m.uint(1, "PROTO")?;
                if proto > 5 {
                    bail!("byte {at}: pickle protocol {proto} is newer than 5");
                }
            }
            0x95 => {
                m.uint(8, "FRAME")?;
            }
            b'.' => return m.pop(at),
            b'(' => m.marks.push(m.stack.len()),
            b']' => m.stack.push(Value::List(vec![])),
            b')' => m.stack.push(Value::Tuple(vec![])),
            b'}' => m.stack.push(Value::Dict(vec![])),
            b'N' => m.stack.push(Value::None),
            0x88 => m.stack.push(Value::Bool(true)),
            0x89 => m.stack.push(Value::Bool(false)),
            b'J' => {
                let v = m.uint(4, "BININT")? as u32 as i32;
                m.stack.push(Value::Int(v as i64));
            }
            b'K' => {
                let v = m.uint(1, "BININT1")?;
                m.stack.push(Value::Int(v as i64));
            }
            b'M' => {
                let v = m.uint(2, "BININT2")?;
                m.stack.push(Value::Int(v as i64));
            }
            0x8a => {
                let n = m.uint(1, "LONG1")? as usize;
                if n > 8 {
                    bail!("byte {at}: LONG1 of {n} bytes does not fit 64 bits");
                }
                let b = m.take(n, "LONG1")?;
                let v = b.iter().rev().fold(0i64, |v, &x| (v << 8) | x as i64);
                let v = if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 { v - (1i64 << (8 * n)) } else { v };
                m.stack.push(Value::Int(v));
            }
            b'G' => {
                let b = m.take(8, "BINFLOAT")?;
                m.stack.push(Value::Float(f64::from_be_bytes(b.try_into().expect("8"))));
            }
            b'T' | b'U' | b'B' | b'C' | 0x8e | 0x96 => {
                let width = match op {
                    b'U' | b'C' => 1,
                    b'T' | b'B' => 4,
                    _ => 8,
                };
                let n = m.uint(width, "length")?;
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                let b = m.take(n, "bytes")?;
                m.stack.push(Value::Bytes(Rc::new(b.to_vec())));
            }
            b'X' | 0x8c | 0x8d => {
                let width = match op {
                    0x8c => 1,
                    b'X' => 4,
                    _ => 8,
                };
                let n = usize::try_from(m.uint(width, "length")?).unwrap_or(usize::MAX);
                let b = m.take(n, "string")?;
                let s = std::str::from_utf8(b)
                    .map_err(|e| anyhow::anyhow!("byte {at}: string is not UTF-8: {e}"))?;
                m.stack.push(Value::Str(s.into()));
            }
            b'a' => {
                let v = m.pop(at)?;
                match m.top_mut(at)? {
                    Value::List(l) => l.push(v),
                    _ => bail!("byte {at}: APPEND to a non-list"),
                }
            }
            b'e' => {
                let items = m.pop_mark(at)?;
                match m.top_mut(at)? {
                    Value::List(l) => l.extend(items),
                    _ => bail!("byte {at}: APPENDS to a non-list"),
                }
            }
            b's' | b'u' => {
                let items = if op == b's' {
                    let v = m.pop(at)?;
                    vec![m.pop(at)?, v]
                } else {
                    m.pop_mark(at)?
                };
                if items.len() % 2 != 0 {
                    bail!("byte {at}: SETITEMS with an odd number of values");
                }
                let mut it = items.into_iter();
                let mut pairs = vec![];
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                match m.top_mut(at)? {
                    Value::Dict(d) => d.extend(pairs),
                    _ => bail!("byte {at}: SETITEM on a non-dict"),
                }
            }
            b't' => {
                let items = m.pop_mark(at)?;
                m.stack.push(Value::Tuple(items));
            }
            b'l' => {
                let items = m.pop_mark(at)?;
                m.stack.push(Value::List(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = (0..n).map(|_| m.pop(at)).collect::<Result<Vec<_>>>()?;
                items.reverse();
                m.stack.push(Value::Tuple(items));
            }
            b'c' => {
                let module = m.line()?;
                let name = m.line()?;
                m.stack.push(Value::Global(format!("{module}.{name}")));
            }
            0x93 => {
                let name = m.pop(at)?;
                let module = m.pop(at)?;
                match (string(&module), string(&name)) {
                    (Some(a), Some(b)) => m.stack.push(Value::Global(format!("{a}.{b}"))),
                    _ => bail!("byte {at}: STACK_GLOBAL needs two strings"),
                }
            }
            b'R' => {
                let args = m.pop(at)?;
                let f = m.pop(at)?;
                m.stack.push(call(at, f, args)?);
            }
            b'b' => {
                let state = m.pop(at)?;
                let obj = m.pop(at)?;
                m.stack.push(build(at, obj, state)?);
            }
            b'q' | b'r' | 0x94 => {
                let key = match op {
                    b'q' => m.uint(1, "BINPUT")?,
                    b'r' => m.uint(4, "LONG_BINPUT")?,
                    _ => m.memo.len() as u64,
                };
                let values = count_values(m.top_mut(at)?);
                m.charge_copy(at, values)?;
                let top = m.top_mut(at)?.clone();
                m.memo.insert(key, top);
            }
            b'h' | b'j' => {
                let key = m.uint(if op == b'h' { 1 } else { 4 }, "BINGET")?;
                let values = count_values(m.memo.get(&key).ok_or_else(|| {
                    anyhow::anyhow!("byte {at}: memo key {key} was never stored")
                })?);
                m.charge_copy(at, values)?;
                m.stack.push(m.memo[&key].clone());
            }
            other => bail!(
                "byte {at}: pickle opcode {other:#04x} ({:?}) is not expected in a verification set",
                other as char
            ),
        }
    }
}
