//! One column's values on their way between PostgreSQL and Parquet, keeping their type: the
//! column's kind is read from its catalog type (`format_type`), values are decoded from and
//! encoded to PostgreSQL's binary COPY form (exact: no float formatting), and held in Arrow
//! arrays of the matching type, so pyarrow and DuckDB read the files as typed columns.
//!
//! | PostgreSQL | Arrow |
//! |---|---|
//! | `smallint`, `integer`, `bigint` | Int16, Int32, Int64 |
//! | `real`, `double precision`, `boolean` | Float32, Float64, Boolean |
//! | `text`, `varchar`, `char` | Utf8 |
//! | `uuid` | FixedSizeBinary(16), Parquet UUID |
//! | `json`, `jsonb` | Utf8, Parquet JSON |
//! | `timestamptz`, `timestamp`, `date` | Timestamp(µs, UTC), Timestamp(µs), Date32 |
//! | `bytea` | Binary |
//! | `vector(n)`, `halfvec(n)` | FixedSizeList<Float32, n> (`halfvec` widened exactly) |
//! | `vector`, `halfvec` without a dimension | List<Float32> |
//! | `sparsevec` | Struct{dim: Int32, indices: List<Int32>, values: List<Float32>} |
//! | one-dimensional arrays of the scalars above | List |
//! | anything else (`tsvector`, `bit`, `numeric`, ...) | Utf8 of its text form |
//!
//! Every field carries its PostgreSQL type in the field metadata (`pg_type`).

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;

use arrow_array::builder::{FixedSizeListBuilder, Float32Builder, Int32Builder, ListBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, FixedSizeBinaryArray, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, ListArray, StringArray, StructArray,
    TimestampMicrosecondArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields, TimeUnit};
use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

/// The Arrow field metadata key holding the column's PostgreSQL type.
pub const PG_TYPE: &str = "pg_type";

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// Days from the Unix epoch to PostgreSQL's.
const PG_EPOCH_DAYS: i32 = 10_957;

/// How a column's values are carried, from its catalog type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnKind {
    /// `boolean`.
    Bool,
    /// `smallint`.
    Int2,
    /// `integer`.
    Int4,
    /// `bigint`.
    Int8,
    /// `real`.
    Float4,
    /// `double precision`.
    Float8,
    /// `text`, `character varying`, `character`.
    Text,
    /// `json` (its text, as stored).
    Json,
    /// `jsonb`.
    Jsonb,
    /// `uuid`.
    Uuid,
    /// `timestamp with time zone`.
    Timestamptz,
    /// `timestamp without time zone`.
    Timestamp,
    /// `date`.
    Date,
    /// `bytea`.
    Bytea,
    /// pgvector `vector`, with its dimension when typed.
    Vector(Option<i32>),
    /// pgvector `halfvec`, with its dimension when typed.
    Halfvec(Option<i32>),
    /// pgvector `sparsevec`.
    Sparsevec,
    /// A one-dimensional array of a scalar kind.
    Array(Box<ColumnKind>),
    /// Any other type, carried as its text form and cast back on import.
    Other,
}

impl ColumnKind {
    /// The kind of a type as `format_type` prints it (`character(26)`, `vector(1536)`,
    /// `timestamp(3) with time zone`, `integer[]`).
    pub fn of(type_sql: &str) -> Self {
        let t = type_sql.trim();
        if let Some(base) = t.strip_suffix("[]") {
            let elem = Self::of(base);
            return if elem.is_array_element() {
                Self::Array(Box::new(elem))
            } else {
                Self::Other
            };
        }
        if t.starts_with("timestamp") {
            return if t.ends_with("with time zone") && !t.ends_with("without time zone") {
                Self::Timestamptz
            } else {
                Self::Timestamp
            };
        }
        let (name, args) = match t.split_once('(') {
            Some((n, a)) => (n.trim(), Some(a.trim_end_matches(')'))),
            None => (t, None),
        };
        // pgvector's types print schema-qualified when its schema is not on the search path.
        let base = match name.rsplit_once('.') {
            Some((_, b)) if !name.contains('"') => b,
            _ => name,
        };
        let dim = args.and_then(|a| a.parse::<i32>().ok());
        match base {
            "boolean" => Self::Bool,
            "smallint" => Self::Int2,
            "integer" => Self::Int4,
            "bigint" => Self::Int8,
            "real" => Self::Float4,
            "double precision" => Self::Float8,
            "text" | "character varying" | "character" => Self::Text,
            "json" => Self::Json,
            "jsonb" => Self::Jsonb,
            "uuid" => Self::Uuid,
            "date" => Self::Date,
            "bytea" => Self::Bytea,
            "vector" => Self::Vector(dim),
            "halfvec" => Self::Halfvec(dim),
            "sparsevec" => Self::Sparsevec,
            _ => Self::Other,
        }
    }

    fn is_array_element(&self) -> bool {
        matches!(
            self,
            Self::Bool
                | Self::Int2
                | Self::Int4
                | Self::Int8
                | Self::Float4
                | Self::Float8
                | Self::Text
                | Self::Uuid
                | Self::Timestamptz
                | Self::Timestamp
                | Self::Date
                | Self::Bytea
        )
    }

    /// Whether values leave PostgreSQL as text (`col::text`) and come back by a cast.
    pub fn is_text_form(&self) -> bool {
        matches!(self, Self::Other)
    }

    /// The Arrow type of the column.
    pub fn data_type(&self) -> DataType {
        let floats = || Arc::new(Field::new("item", DataType::Float32, true));
        match self {
            Self::Bool => DataType::Boolean,
            Self::Int2 => DataType::Int16,
            Self::Int4 => DataType::Int32,
            Self::Int8 => DataType::Int64,
            Self::Float4 => DataType::Float32,
            Self::Float8 => DataType::Float64,
            Self::Text | Self::Json | Self::Jsonb | Self::Other => DataType::Utf8,
            Self::Uuid => DataType::FixedSizeBinary(16),
            Self::Timestamptz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Self::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Self::Date => DataType::Date32,
            Self::Bytea => DataType::Binary,
            Self::Vector(Some(n)) | Self::Halfvec(Some(n)) => DataType::FixedSizeList(floats(), *n),
            Self::Vector(None) | Self::Halfvec(None) => DataType::List(floats()),
            Self::Sparsevec => DataType::Struct(sparse_fields()),
            Self::Array(e) => DataType::List(Arc::new(Field::new("item", e.data_type(), true))),
        }
    }

    /// The Arrow field of column `name` of type `type_sql`, with the type in its metadata
    /// (and the canonical UUID and JSON extension types, which Parquet writes as its UUID and
    /// JSON logical types).
    pub fn field(&self, name: &str, type_sql: &str) -> Field {
        let field = Field::new(name, self.data_type(), true);
        let field = match self {
            Self::Uuid => field.with_extension_type(arrow_schema::extension::Uuid),
            Self::Json | Self::Jsonb => {
                field.with_extension_type(arrow_schema::extension::Json::default())
            }
            _ => field,
        };
        let mut meta: HashMap<String, String> = field.metadata().clone().into();
        meta.insert(PG_TYPE.to_owned(), type_sql.to_owned());
        field.with_metadata(meta)
    }
}

fn sparse_fields() -> Fields {
    let list = |t: DataType| DataType::List(Arc::new(Field::new("item", t, true)));
    Fields::from(vec![
        Field::new("dim", DataType::Int32, false),
        Field::new("indices", list(DataType::Int32), false),
        Field::new("values", list(DataType::Float32), false),
    ])
}

/// One value of a column, between PostgreSQL and Arrow. Timestamps are microseconds and dates
/// days since the Unix epoch (PostgreSQL's infinities kept as `i64`/`i32` MAX and MIN).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// `boolean`.
    Bool(bool),
    /// `smallint`.
    I16(i16),
    /// `integer`, `date`.
    I32(i32),
    /// `bigint`, timestamps.
    I64(i64),
    /// `real`.
    F32(f32),
    /// `double precision`.
    F64(f64),
    /// Texts, json, and the text form of other types.
    Text(String),
    /// `bytea`, `uuid`.
    Bytes(Vec<u8>),
    /// `vector`, `halfvec`.
    Floats(Vec<f32>),
    /// `sparsevec`: dimension, 0-based indices and their values.
    Sparse {
        /// Dimension.
        dim: i32,
        /// Indices of the non-zero elements, from 0.
        indices: Vec<i32>,
        /// Their values.
        values: Vec<f32>,
    },
    /// An array.
    List(Vec<Value>),
}

impl Value {
    /// Roughly how many bytes the value holds (for sizing files and batches).
    pub fn size(&self) -> usize {
        match self {
            Self::Null => 1,
            Self::Bool(_) => 1,
            Self::I16(_) => 2,
            Self::I32(_) | Self::F32(_) => 4,
            Self::I64(_) | Self::F64(_) => 8,
            Self::Text(s) => s.len(),
            Self::Bytes(b) => b.len(),
            Self::Floats(f) => 4 * f.len(),
            Self::Sparse { indices, .. } => 8 * indices.len() + 4,
            Self::List(v) => v.iter().map(Value::size).sum(),
        }
    }
}

/// Why a value could not be carried.
pub type BoxError = Box<dyn Error + Sync + Send>;

fn take<const N: usize>(raw: &[u8], at: &mut usize) -> Result<[u8; N], BoxError> {
    let end = *at + N;
    let bytes = raw
        .get(*at..end)
        .ok_or_else(|| format!("value too short ({} bytes)", raw.len()))?;
    *at = end;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

fn text(raw: &[u8]) -> Result<String, BoxError> {
    Ok(String::from_utf8(raw.to_vec()).map_err(|e| format!("text that is not UTF-8: {e}"))?)
}

/// Decodes a value of `kind` from PostgreSQL's binary send form (for [`ColumnKind::Other`]:
/// its text form, selected as `col::text`).
pub fn decode(kind: &ColumnKind, raw: &[u8]) -> Result<Value, BoxError> {
    let mut at = 0usize;
    let at = &mut at;
    Ok(match kind {
        ColumnKind::Bool => Value::Bool(take::<1>(raw, at)?[0] != 0),
        ColumnKind::Int2 => Value::I16(i16::from_be_bytes(take(raw, at)?)),
        ColumnKind::Int4 => Value::I32(i32::from_be_bytes(take(raw, at)?)),
        ColumnKind::Int8 => Value::I64(i64::from_be_bytes(take(raw, at)?)),
        ColumnKind::Float4 => Value::F32(f32::from_be_bytes(take(raw, at)?)),
        ColumnKind::Float8 => Value::F64(f64::from_be_bytes(take(raw, at)?)),
        ColumnKind::Text | ColumnKind::Json | ColumnKind::Other => Value::Text(text(raw)?),
        ColumnKind::Jsonb => match raw.split_first() {
            Some((1, rest)) => Value::Text(text(rest)?),
            _ => return Err("jsonb in an unknown binary version".into()),
        },
        ColumnKind::Uuid | ColumnKind::Bytea => Value::Bytes(raw.to_vec()),
        ColumnKind::Timestamptz | ColumnKind::Timestamp => {
            let v = i64::from_be_bytes(take(raw, at)?);
            Value::I64(match v {
                i64::MAX | i64::MIN => v,
                _ => v
                    .checked_add(PG_EPOCH_MICROS)
                    .ok_or("timestamp out of Arrow's range")?,
            })
        }
        ColumnKind::Date => {
            let v = i32::from_be_bytes(take(raw, at)?);
            Value::I32(match v {
                i32::MAX | i32::MIN => v,
                _ => v.checked_add(PG_EPOCH_DAYS).ok_or("date out of range")?,
            })
        }
        ColumnKind::Vector(_) => {
            let dim = i16::from_be_bytes(take(raw, at)?);
            take::<2>(raw, at)?;
            let mut v = Vec::with_capacity(dim.max(0) as usize);
            for _ in 0..dim {
                v.push(f32::from_be_bytes(take(raw, at)?));
            }
            Value::Floats(v)
        }
        ColumnKind::Halfvec(_) => {
            let dim = i16::from_be_bytes(take(raw, at)?);
            take::<2>(raw, at)?;
            let mut v = Vec::with_capacity(dim.max(0) as usize);
            for _ in 0..dim {
                v.push(half::f16::from_bits(u16::from_be_bytes(take(raw, at)?)).to_f32());
            }
            Value::Floats(v)
        }
        ColumnKind::Sparsevec => {
            let dim = i32::from_be_bytes(take(raw, at)?);
            let nnz = i32::from_be_bytes(take(raw, at)?).max(0) as usize;
            take::<4>(raw, at)?;
            let mut indices = Vec::with_capacity(nnz);
            for _ in 0..nnz {
                indices.push(i32::from_be_bytes(take(raw, at)?));
            }
            let mut values = Vec::with_capacity(nnz);
            for _ in 0..nnz {
                values.push(f32::from_be_bytes(take(raw, at)?));
            }
            Value::Sparse {
                dim,
                indices,
                values,
            }
        }
        ColumnKind::Array(elem) => {
            let ndim = i32::from_be_bytes(take(raw, at)?);
            take::<8>(raw, at)?; // has-null flag, element type
            if ndim == 0 {
                return Ok(Value::List(Vec::new()));
            }
            if ndim != 1 {
                return Err(format!(
                    "a {ndim}-dimensional array: export carries one-dimensional arrays only"
                )
                .into());
            }
            let len = i32::from_be_bytes(take(raw, at)?).max(0) as usize;
            let lower = i32::from_be_bytes(take(raw, at)?);
            if lower != 1 {
                return Err(format!(
                    "an array whose subscripts start at {lower}: export carries arrays from 1 only"
                )
                .into());
            }
            let mut items = Vec::with_capacity(len);
            for _ in 0..len {
                let n = i32::from_be_bytes(take(raw, at)?);
                if n < 0 {
                    items.push(Value::Null);
                    continue;
                }
                let end = *at + n as usize;
                let item = raw.get(*at..end).ok_or("array element too short")?;
                *at = end;
                items.push(decode(elem, item)?);
            }
            Value::List(items)
        }
    })
}

/// Encodes `value` of `kind` in PostgreSQL's binary receive form for a column of type `ty`
/// (arrays need its element type).
pub fn encode(
    kind: &ColumnKind,
    value: &Value,
    ty: &Type,
    out: &mut BytesMut,
) -> Result<(), BoxError> {
    let wrong = || -> BoxError { format!("a {value:?} can't be written as {kind:?}").into() };
    match (kind, value) {
        (ColumnKind::Bool, Value::Bool(b)) => out.put_u8(u8::from(*b)),
        (ColumnKind::Int2, Value::I16(v)) => out.put_i16(*v),
        (ColumnKind::Int4, Value::I32(v)) => out.put_i32(*v),
        (ColumnKind::Int8, Value::I64(v)) => out.put_i64(*v),
        (ColumnKind::Float4, Value::F32(v)) => out.put_f32(*v),
        (ColumnKind::Float8, Value::F64(v)) => out.put_f64(*v),
        (ColumnKind::Text | ColumnKind::Json | ColumnKind::Other, Value::Text(s)) => {
            out.put_slice(s.as_bytes())
        }
        (ColumnKind::Jsonb, Value::Text(s)) => {
            out.put_u8(1);
            out.put_slice(s.as_bytes());
        }
        (ColumnKind::Uuid, Value::Bytes(b)) if b.len() == 16 => out.put_slice(b),
        (ColumnKind::Bytea, Value::Bytes(b)) => out.put_slice(b),
        (ColumnKind::Timestamptz | ColumnKind::Timestamp, Value::I64(v)) => out.put_i64(match *v {
            i64::MAX | i64::MIN => *v,
            v => v
                .checked_sub(PG_EPOCH_MICROS)
                .ok_or("timestamp out of range")?,
        }),
        (ColumnKind::Date, Value::I32(v)) => out.put_i32(match *v {
            i32::MAX | i32::MIN => *v,
            v => v.checked_sub(PG_EPOCH_DAYS).ok_or("date out of range")?,
        }),
        (ColumnKind::Vector(_), Value::Floats(v)) => {
            out.put_i16(i16::try_from(v.len()).map_err(|_| "vector too long")?);
            out.put_i16(0);
            for f in v {
                out.put_f32(*f);
            }
        }
        (ColumnKind::Halfvec(_), Value::Floats(v)) => {
            out.put_i16(i16::try_from(v.len()).map_err(|_| "halfvec too long")?);
            out.put_i16(0);
            for f in v {
                out.put_u16(half::f16::from_f32(*f).to_bits());
            }
        }
        (
            ColumnKind::Sparsevec,
            Value::Sparse {
                dim,
                indices,
                values,
            },
        ) => {
            if indices.len() != values.len() {
                return Err("a sparsevec with more indices than values".into());
            }
            out.put_i32(*dim);
            out.put_i32(i32::try_from(indices.len()).map_err(|_| "sparsevec too long")?);
            out.put_i32(0);
            for i in indices {
                out.put_i32(*i);
            }
            for v in values {
                out.put_f32(*v);
            }
        }
        (ColumnKind::Array(elem), Value::List(items)) => {
            let member = match ty.kind() {
                tokio_postgres::types::Kind::Array(m) => m.clone(),
                _ => return Err(format!("column type {ty} is not an array").into()),
            };
            if items.is_empty() {
                out.put_i32(0);
                out.put_i32(0);
                out.put_u32(member.oid());
                return Ok(());
            }
            out.put_i32(1);
            out.put_i32(i32::from(items.contains(&Value::Null)));
            out.put_u32(member.oid());
            out.put_i32(i32::try_from(items.len()).map_err(|_| "array too long")?);
            out.put_i32(1);
            for item in items {
                if *item == Value::Null {
                    out.put_i32(-1);
                    continue;
                }
                let len_at = out.len();
                out.put_i32(0);
                encode(elem, item, &member, out)?;
                let n = i32::try_from(out.len() - len_at - 4).map_err(|_| "element too long")?;
                out[len_at..len_at + 4].copy_from_slice(&n.to_be_bytes());
            }
        }
        _ => return Err(wrong()),
    }
    Ok(())
}

/// A value as binary COPY reads it: the raw send form of any type.
#[derive(Debug)]
pub struct Raw<'a>(pub &'a [u8]);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        Ok(Raw(raw))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A value as binary COPY writes it: [`encode`]d for the column's type.
#[derive(Debug)]
pub struct Cell<'a> {
    /// How the column is carried.
    pub kind: &'a ColumnKind,
    /// The value.
    pub value: &'a Value,
}

impl ToSql for Cell<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if *self.value == Value::Null {
            return Ok(IsNull::Yes);
        }
        encode(self.kind, self.value, ty, out)?;
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// The Arrow array of `values` of `kind`.
pub fn to_array(kind: &ColumnKind, values: &[Value]) -> Result<ArrayRef, BoxError> {
    macro_rules! prim {
        ($arr:ty, $variant:ident) => {
            Arc::new(
                values
                    .iter()
                    .map(|v| match v {
                        Value::$variant(x) => Some(*x),
                        _ => None,
                    })
                    .collect::<$arr>(),
            ) as ArrayRef
        };
    }
    let texts = || -> ArrayRef {
        Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Text(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect::<StringArray>(),
        )
    };
    let bytes = || {
        values.iter().map(|v| match v {
            Value::Bytes(b) => Some(b.as_slice()),
            _ => None,
        })
    };
    Ok(match kind {
        ColumnKind::Bool => Arc::new(
            values
                .iter()
                .map(|v| match v {
                    Value::Bool(b) => Some(*b),
                    _ => None,
                })
                .collect::<BooleanArray>(),
        ),
        ColumnKind::Int2 => prim!(Int16Array, I16),
        ColumnKind::Int4 => prim!(Int32Array, I32),
        ColumnKind::Int8 => prim!(Int64Array, I64),
        ColumnKind::Float4 => prim!(Float32Array, F32),
        ColumnKind::Float8 => prim!(Float64Array, F64),
        ColumnKind::Text | ColumnKind::Json | ColumnKind::Jsonb | ColumnKind::Other => texts(),
        ColumnKind::Uuid => Arc::new(FixedSizeBinaryArray::try_from_sparse_iter_with_size(
            bytes(),
            16,
        )?),
        ColumnKind::Bytea => Arc::new(bytes().collect::<BinaryArray>()),
        ColumnKind::Timestamptz => {
            let a: TimestampMicrosecondArray = values
                .iter()
                .map(|v| match v {
                    Value::I64(x) => Some(*x),
                    _ => None,
                })
                .collect();
            Arc::new(a.with_timezone("UTC"))
        }
        ColumnKind::Timestamp => prim!(TimestampMicrosecondArray, I64),
        ColumnKind::Date => prim!(Date32Array, I32),
        ColumnKind::Vector(Some(n)) | ColumnKind::Halfvec(Some(n)) => {
            let dim = *n as usize;
            let mut b = FixedSizeListBuilder::with_capacity(
                Float32Builder::with_capacity(values.len() * dim),
                *n,
                values.len(),
            );
            for v in values {
                match v {
                    Value::Floats(f) if f.len() == dim => {
                        b.values().append_slice(f);
                        b.append(true);
                    }
                    Value::Floats(f) => {
                        return Err(format!(
                            "a vector of {} dimensions in a column of {dim}",
                            f.len()
                        )
                        .into())
                    }
                    _ => {
                        for _ in 0..dim {
                            b.values().append_null();
                        }
                        b.append(false);
                    }
                }
            }
            Arc::new(b.finish())
        }
        ColumnKind::Vector(None) | ColumnKind::Halfvec(None) => {
            let mut b = ListBuilder::new(Float32Builder::new());
            for v in values {
                match v {
                    Value::Floats(f) => {
                        b.values().append_slice(f);
                        b.append(true);
                    }
                    _ => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
        ColumnKind::Sparsevec => {
            let mut dims = Vec::with_capacity(values.len());
            let mut idx = ListBuilder::new(Int32Builder::new());
            let mut vals = ListBuilder::new(Float32Builder::new());
            let mut valid = Vec::with_capacity(values.len());
            for v in values {
                match v {
                    Value::Sparse {
                        dim,
                        indices,
                        values,
                    } => {
                        dims.push(*dim);
                        idx.values().append_slice(indices);
                        vals.values().append_slice(values);
                        valid.push(true);
                    }
                    _ => {
                        dims.push(0);
                        valid.push(false);
                    }
                }
                idx.append(true);
                vals.append(true);
            }
            Arc::new(StructArray::try_new(
                sparse_fields(),
                vec![
                    Arc::new(Int32Array::from(dims)),
                    Arc::new(idx.finish()),
                    Arc::new(vals.finish()),
                ],
                Some(NullBuffer::from(valid)),
            )?)
        }
        ColumnKind::Array(elem) => {
            let mut offsets = Vec::with_capacity(values.len() + 1);
            offsets.push(0i32);
            let mut items = Vec::new();
            let mut valid = Vec::with_capacity(values.len());
            for v in values {
                if let Value::List(l) = v {
                    items.extend(l.iter().cloned());
                    valid.push(true);
                } else {
                    valid.push(false);
                }
                offsets.push(i32::try_from(items.len()).map_err(|_| "too many array items")?);
            }
            let child = to_array(elem, &items)?;
            Arc::new(ListArray::try_new(
                Arc::new(Field::new("item", elem.data_type(), true)),
                OffsetBuffer::new(offsets.into()),
                child,
                Some(NullBuffer::from(valid)),
            )?)
        }
    })
}

/// The values of an Arrow array read back as `kind` (as [`to_array`] wrote them, or as
/// pyarrow rewrote them).
pub fn from_array(kind: &ColumnKind, array: &dyn Array) -> Result<Vec<Value>, BoxError> {
    let wrong = || -> BoxError {
        format!(
            "holds {} where {} was expected",
            array.data_type(),
            kind.data_type()
        )
        .into()
    };
    let n = array.len();
    let mut out = Vec::with_capacity(n);
    macro_rules! prim {
        ($t:ty, $variant:ident) => {{
            let a = array.as_primitive_opt::<$t>().ok_or_else(wrong)?;
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::$variant(a.value(i))
                });
            }
        }};
    }
    let floats = |a: &dyn Array| -> Result<Vec<f32>, BoxError> {
        let f = a.as_primitive_opt::<Float32Type>().ok_or_else(wrong)?;
        Ok(f.values().to_vec())
    };
    match kind {
        ColumnKind::Bool => {
            let a = array.as_boolean_opt().ok_or_else(wrong)?;
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Bool(a.value(i))
                });
            }
        }
        ColumnKind::Int2 => prim!(Int16Type, I16),
        ColumnKind::Int4 => prim!(Int32Type, I32),
        ColumnKind::Int8 => prim!(Int64Type, I64),
        ColumnKind::Float4 => prim!(Float32Type, F32),
        ColumnKind::Float8 => prim!(Float64Type, F64),
        ColumnKind::Timestamptz | ColumnKind::Timestamp => prim!(TimestampMicrosecondType, I64),
        ColumnKind::Date => prim!(Date32Type, I32),
        ColumnKind::Text | ColumnKind::Json | ColumnKind::Jsonb | ColumnKind::Other => {
            if let Some(a) = array.as_string_opt::<i32>() {
                for i in 0..n {
                    out.push(if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::Text(a.value(i).to_owned())
                    });
                }
            } else {
                let a = array.as_string_opt::<i64>().ok_or_else(wrong)?;
                for i in 0..n {
                    out.push(if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::Text(a.value(i).to_owned())
                    });
                }
            }
        }
        ColumnKind::Uuid => {
            let a = array.as_fixed_size_binary_opt().ok_or_else(wrong)?;
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Bytes(a.value(i).to_vec())
                });
            }
        }
        ColumnKind::Bytea => {
            let a = array.as_binary_opt::<i32>().ok_or_else(wrong)?;
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::Bytes(a.value(i).to_vec())
                });
            }
        }
        ColumnKind::Vector(_) | ColumnKind::Halfvec(_) => {
            if let Some(a) = array.as_fixed_size_list_opt() {
                for i in 0..n {
                    out.push(if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::Floats(floats(a.value(i).as_ref())?)
                    });
                }
            } else {
                let a = array.as_list_opt::<i32>().ok_or_else(wrong)?;
                for i in 0..n {
                    out.push(if a.is_null(i) {
                        Value::Null
                    } else {
                        Value::Floats(floats(a.value(i).as_ref())?)
                    });
                }
            }
        }
        ColumnKind::Sparsevec => {
            let a = array.as_struct_opt().ok_or_else(wrong)?;
            let part = |name: &str| a.column_by_name(name).ok_or_else(wrong);
            let dims = part("dim")?
                .as_primitive_opt::<Int32Type>()
                .ok_or_else(wrong)?;
            let idx = part("indices")?.as_list_opt::<i32>().ok_or_else(wrong)?;
            let vals = part("values")?.as_list_opt::<i32>().ok_or_else(wrong)?;
            for i in 0..n {
                if a.is_null(i) {
                    out.push(Value::Null);
                    continue;
                }
                let indices = idx
                    .value(i)
                    .as_primitive_opt::<Int32Type>()
                    .ok_or_else(wrong)?
                    .values()
                    .to_vec();
                out.push(Value::Sparse {
                    dim: dims.value(i),
                    indices,
                    values: floats(vals.value(i).as_ref())?,
                });
            }
        }
        ColumnKind::Array(elem) => {
            let a = array.as_list_opt::<i32>().ok_or_else(wrong)?;
            for i in 0..n {
                out.push(if a.is_null(i) {
                    Value::Null
                } else {
                    Value::List(from_array(elem, a.value(i).as_ref())?)
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_come_from_the_catalog_type() {
        assert_eq!(ColumnKind::of("character(26)"), ColumnKind::Text);
        assert_eq!(ColumnKind::of("vector(8)"), ColumnKind::Vector(Some(8)));
        assert_eq!(ColumnKind::of("vector"), ColumnKind::Vector(None));
        assert_eq!(
            ColumnKind::of("ext.halfvec(4)"),
            ColumnKind::Halfvec(Some(4))
        );
        assert_eq!(
            ColumnKind::of("timestamp(3) with time zone"),
            ColumnKind::Timestamptz
        );
        assert_eq!(
            ColumnKind::of("timestamp without time zone"),
            ColumnKind::Timestamp
        );
        assert_eq!(
            ColumnKind::of("text[]"),
            ColumnKind::Array(Box::new(ColumnKind::Text))
        );
        assert_eq!(ColumnKind::of("jsonb[]"), ColumnKind::Other);
        assert_eq!(ColumnKind::of("tsvector"), ColumnKind::Other);
        assert_eq!(ColumnKind::of("numeric(10,2)"), ColumnKind::Other);
    }

    #[test]
    fn values_survive_binary_and_arrow_both_ways() {
        let cases: Vec<(ColumnKind, Type, Value)> = vec![
            (ColumnKind::Int8, Type::INT8, Value::I64(-42)),
            (ColumnKind::Float4, Type::FLOAT4, Value::F32(0.1)),
            (
                ColumnKind::Jsonb,
                Type::JSONB,
                Value::Text("{\"a\": 1}".into()),
            ),
            (
                ColumnKind::Uuid,
                Type::UUID,
                Value::Bytes((0u8..16).collect()),
            ),
            (
                ColumnKind::Timestamptz,
                Type::TIMESTAMPTZ,
                Value::I64(1_700_000_000_000_000),
            ),
            (ColumnKind::Timestamp, Type::TIMESTAMP, Value::I64(i64::MAX)),
            (ColumnKind::Date, Type::DATE, Value::I32(19_000)),
            (
                ColumnKind::Halfvec(Some(3)),
                Type::BYTEA,
                Value::Floats(vec![0.5, -2.0, 65504.0]),
            ),
            (
                ColumnKind::Vector(None),
                Type::BYTEA,
                Value::Floats(vec![0.1, 0.2]),
            ),
            (
                ColumnKind::Sparsevec,
                Type::BYTEA,
                Value::Sparse {
                    dim: 10,
                    indices: vec![1, 7],
                    values: vec![0.25, -1.5],
                },
            ),
            (
                ColumnKind::Array(Box::new(ColumnKind::Text)),
                Type::TEXT_ARRAY,
                Value::List(vec![
                    Value::Text("a".into()),
                    Value::Null,
                    Value::Text("é".into()),
                ]),
            ),
            (
                ColumnKind::Array(Box::new(ColumnKind::Int4)),
                Type::INT4_ARRAY,
                Value::List(vec![]),
            ),
        ];
        for (kind, ty, value) in cases {
            let mut buf = BytesMut::new();
            encode(&kind, &value, &ty, &mut buf).unwrap();
            assert_eq!(decode(&kind, &buf).unwrap(), value, "{kind:?} binary");
            let array = to_array(&kind, &[value.clone(), Value::Null]).unwrap();
            assert_eq!(array.data_type(), &kind.data_type(), "{kind:?}");
            assert_eq!(
                from_array(&kind, array.as_ref()).unwrap(),
                vec![value, Value::Null],
                "{kind:?} arrow"
            );
        }
    }
}
