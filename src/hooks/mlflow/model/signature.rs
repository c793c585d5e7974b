//! A model's signature: the columns it takes and returns, in MLflow's
//! column-based schema (`mlflow.types.Schema` of `ColSpec`s).

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, ErrorKind, Result};

/// The type of one column, as MLflow's `DataType` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColType {
    /// `boolean` (numpy `bool`).
    Boolean,
    /// `integer` (32-bit).
    Integer,
    /// `long` (64-bit integer).
    Long,
    /// `float` (32-bit).
    Float,
    /// `double` (64-bit float).
    Double,
    /// `string`.
    String,
    /// `binary` (bytes).
    Binary,
    /// `datetime`.
    Datetime,
}

impl ColType {
    /// MLflow's name of the type (`"double"`, `"long"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ColType::Boolean => "boolean",
            ColType::Integer => "integer",
            ColType::Long => "long",
            ColType::Float => "float",
            ColType::Double => "double",
            ColType::String => "string",
            ColType::Binary => "binary",
            ColType::Datetime => "datetime",
        }
    }
}

impl fmt::Display for ColType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One column of a schema: `{"type": "double", "name": "sepal_length", "required": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColSpec {
    /// Its type.
    #[serde(rename = "type")]
    pub col_type: ColType,
    /// Its name; `None` for an unnamed column (a classifier's single output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether a value must be present (MLflow's default is `true`).
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl ColSpec {
    /// A required column named `name`.
    pub fn new(name: impl Into<String>, col_type: ColType) -> Self {
        ColSpec {
            col_type,
            name: Some(name.into()),
            required: true,
        }
    }

    /// A required unnamed column.
    pub fn unnamed(col_type: ColType) -> Self {
        ColSpec {
            col_type,
            name: None,
            required: true,
        }
    }

    /// The same column, optional.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }
}

/// One entry of a schema: a plain column, or anything else MLflow can describe
/// (a tensor spec, an array or object column), kept as its JSON so a model
/// logged by another client still loads and round-trips unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SchemaField {
    /// A column of a scalar type.
    Column(ColSpec),
    /// Another kind of spec, as MLflow wrote it.
    Other(Value),
}

/// An input or output schema: MLflow's `Schema`, a list of specs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Schema(pub Vec<SchemaField>);

impl Schema {
    /// A schema of required named columns, in order:
    /// `Schema::from_columns(&[("sepal_length", ColType::Double)])`.
    pub fn from_columns<S: AsRef<str>>(columns: &[(S, ColType)]) -> Self {
        Schema(
            columns
                .iter()
                .map(|(n, t)| SchemaField::Column(ColSpec::new(n.as_ref(), *t)))
                .collect(),
        )
    }

    /// A schema of one required unnamed column (e.g. a classifier's label).
    pub fn unnamed(col_type: ColType) -> Self {
        Schema(vec![SchemaField::Column(ColSpec::unnamed(col_type))])
    }

    /// A schema of the given specs.
    pub fn from_specs(specs: impl IntoIterator<Item = ColSpec>) -> Self {
        Schema(specs.into_iter().map(SchemaField::Column).collect())
    }

    /// The plain columns, in order (other specs are skipped).
    pub fn columns(&self) -> impl Iterator<Item = &ColSpec> {
        self.0.iter().filter_map(|f| match f {
            SchemaField::Column(c) => Some(c),
            SchemaField::Other(_) => None,
        })
    }

    /// The names of the named columns, in order.
    pub fn names(&self) -> Vec<&str> {
        self.columns().filter_map(|c| c.name.as_deref()).collect()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has no entry.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The schema as MLflow writes it inside `MLmodel`: a JSON string with Python's
    /// `json.dumps` spacing (`[{"type": "double", "name": "x", "required": true}]`).
    pub fn to_json(&self) -> String {
        python_json(&self.0)
    }

    /// Parses the JSON string form.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                "mlflow.model.signature",
                format!("schema is not a list of MLflow specs: {e}"),
            )
            .with_source(e)
        })
    }
}

/// A model's signature (MLflow's `ModelSignature`): inputs, outputs and inference
/// params. In `MLmodel` each part is a JSON string (or `null`), as MLflow writes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelSignature {
    /// What the model takes.
    pub inputs: Option<Schema>,
    /// What it returns.
    pub outputs: Option<Schema>,
    /// MLflow's `ParamSchema` (inference parameters), kept as parsed JSON.
    pub params: Option<Value>,
}

impl ModelSignature {
    /// A signature with these inputs and no outputs.
    pub fn new(inputs: Schema) -> Self {
        ModelSignature {
            inputs: Some(inputs),
            outputs: None,
            params: None,
        }
    }

    /// A signature from named input columns and, optionally, the output schema:
    /// `ModelSignature::from_columns(&[("sepal_length", ColType::Double)], Some(Schema::unnamed(ColType::Long)))`.
    pub fn from_columns<S: AsRef<str>>(inputs: &[(S, ColType)], outputs: Option<Schema>) -> Self {
        ModelSignature {
            inputs: Some(Schema::from_columns(inputs)),
            outputs,
            params: None,
        }
    }

    /// Sets the outputs.
    pub fn with_outputs(mut self, outputs: Schema) -> Self {
        self.outputs = Some(outputs);
        self
    }

    /// The input column names, in order (empty without inputs).
    pub fn input_names(&self) -> Vec<&str> {
        self.inputs.as_ref().map(Schema::names).unwrap_or_default()
    }
}

/// The on-disk form: three JSON strings.
#[derive(Serialize, Deserialize)]
struct RawSignature {
    #[serde(default)]
    inputs: Option<String>,
    #[serde(default)]
    outputs: Option<String>,
    #[serde(default)]
    params: Option<String>,
}

impl Serialize for ModelSignature {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        RawSignature {
            inputs: self.inputs.as_ref().map(Schema::to_json),
            outputs: self.outputs.as_ref().map(Schema::to_json),
            params: self.params.as_ref().map(python_json),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ModelSignature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = RawSignature::deserialize(d)?;
        // MLflow treats an empty string like null.
        let part = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        let schema = |s: Option<String>| -> std::result::Result<Option<Schema>, D::Error> {
            part(s)
                .map(|s| serde_json::from_str(&s).map_err(D::Error::custom))
                .transpose()
        };
        Ok(ModelSignature {
            inputs: schema(raw.inputs)?,
            outputs: schema(raw.outputs)?,
            params: part(raw.params)
                .map(|s| serde_json::from_str(&s).map_err(D::Error::custom))
                .transpose()?,
        })
    }
}

/// JSON with Python's `json.dumps` separators (`", "` and `": "`), so the strings
/// gust writes read exactly like MLflow's.
pub(crate) fn python_json<T: Serialize + ?Sized>(value: &T) -> String {
    struct PythonFormatter;
    impl serde_json::ser::Formatter for PythonFormatter {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first { Ok(()) } else { w.write_all(b", ") }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first { Ok(()) } else { w.write_all(b", ") }
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
        ) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    // Serializing plain data into a Vec cannot fail.
    value
        .serialize(&mut ser)
        .expect("serializing a schema to JSON");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_serialize_like_mlflow() {
        let s = Schema::from_specs([
            ColSpec::new("sepal_length", ColType::Double),
            ColSpec::new("n", ColType::Long).optional(),
        ]);
        assert_eq!(
            s.to_json(),
            r#"[{"type": "double", "name": "sepal_length", "required": true}, {"type": "long", "name": "n", "required": false}]"#
        );
        assert_eq!(
            Schema::unnamed(ColType::Long).to_json(),
            r#"[{"type": "long", "required": true}]"#
        );
        assert_eq!(Schema::from_json(&s.to_json()).unwrap(), s);
        assert_eq!(s.names(), ["sepal_length", "n"]);
    }

    #[test]
    fn other_specs_are_kept() {
        let json = r#"[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}, {"type": "double", "name": "x"}]"#;
        let s = Schema::from_json(json).unwrap();
        assert!(matches!(s.0[0], SchemaField::Other(_)));
        // A missing `required` defaults to true, as in MLflow.
        assert_eq!(
            s.columns().next().unwrap(),
            &ColSpec::new("x", ColType::Double)
        );
        let again = Schema::from_json(&s.to_json()).unwrap();
        assert_eq!(again, s);
        assert_eq!(
            Schema::from_json("{}").unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn signature_parts_are_json_strings() {
        let sig = ModelSignature::from_columns(
            &[("a", ColType::Double), ("b", ColType::Float)],
            Some(Schema::unnamed(ColType::Long)),
        );
        let v = serde_json::to_value(&sig).unwrap();
        assert_eq!(
            v["inputs"],
            r#"[{"type": "double", "name": "a", "required": true}, {"type": "float", "name": "b", "required": true}]"#
        );
        assert_eq!(v["outputs"], r#"[{"type": "long", "required": true}]"#);
        assert!(v["params"].is_null());
        let back: ModelSignature = serde_json::from_value(v).unwrap();
        assert_eq!(back, sig);
        assert_eq!(back.input_names(), ["a", "b"]);
        let empty: ModelSignature =
            serde_json::from_value(serde_json::json!({"inputs": "", "outputs": null})).unwrap();
        assert_eq!(empty, ModelSignature::default());
    }
}
