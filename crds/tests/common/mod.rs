//! Test helpers: an offline stand-in for the apiserver's admission of a custom resource.
//!
//! `admit` applies the CRD schema's structural checks that the apiserver does (type, bounds,
//! lengths, pattern, enum, required, list sizes, set uniqueness) with a small checker written
//! here, then the CEL `x-kubernetes-validations` with kube's client-side evaluator (kube-cel),
//! which applies schema defaults first, as the apiserver does. Each error has the field path
//! and the message: the rule's `message` for CEL, and for the schema the apiserver's wording
//! (the detail of its field error, without the "<path> in body" prefix). The wording is
//! written out here on its own, not taken from `mooring-crds`, so that the Rust parse layer
//! is compared with an independent spelling.

#![allow(dead_code)]

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// One admission error.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rejection {
    /// `spec.holdTime`, `spec.communities[1]`; empty for a rule on the whole object.
    pub path: String,
    pub message: String,
}

impl Rejection {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Rejection { path: path.into(), message: message.into() }
    }
}

/// The openAPIV3Schema of the CRD's only version, as JSON.
pub fn schema_of(crd: &CustomResourceDefinition) -> Value {
    let s = crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap();
    serde_json::to_value(s).unwrap()
}

/// `base.field`, or `field` at the root.
pub fn join(base: &str, field: &str) -> String {
    if base.is_empty() {
        field.to_string()
    } else {
        format!("{base}.{field}")
    }
}

/// A bound as the apiserver prints it (integral values without a fraction).
fn number(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// Structural checks of `value` against `schema`.
pub fn schema_errors(schema: &Value, value: &Value, path: &str, out: &mut Vec<Rejection>) {
    let mut err = |message: String| out.push(Rejection::new(path, message));
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            err("Invalid value: null".into());
        }
        return;
    }
    let ty = schema.get("type").and_then(Value::as_str);
    let type_ok = match ty {
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        _ => true,
    };
    if !type_ok {
        err(format!("must be of type {}", ty.unwrap()));
        return;
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if n < min {
                err(format!("should be greater than or equal to {}", number(min)));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                err(format!("should be less than or equal to {}", number(max)));
            }
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if len < min {
                err(format!("should be at least {min} chars long"));
            }
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                err(format!("may not be longer than {max}"));
            }
        }
        if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
            if !regex::Regex::new(p).unwrap().is_match(s) {
                err(format!("should match '{p}'"));
            }
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            err(format!("Unsupported value: {value}: supported values: {}", list.join(", ")));
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
            if items.len() as u64 > max {
                err(format!("must have at most {max} items"));
            }
        }
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                err(format!("should have at least {min} items"));
            }
        }
        if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
            for (i, v) in items.iter().enumerate() {
                if items[..i].contains(v) {
                    out.push(Rejection::new(format!("{path}[{i}]"), format!("Duplicate value: {v}")));
                }
            }
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, v) in items.iter().enumerate() {
                schema_errors(item_schema, v, &format!("{path}[{i}]"), out);
            }
        }
    }
    if let Some(obj) = value.as_object() {
        if let Some(req) = schema.get("required").and_then(Value::as_array) {
            for r in req {
                let r = r.as_str().unwrap();
                if !obj.contains_key(r) {
                    out.push(Rejection::new(join(path, r), "Required value"));
                }
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, v) in obj {
                if let Some(s) = props.get(k) {
                    schema_errors(s, v, &join(path, k), out);
                }
            }
        }
    }
}

/// CEL `x-kubernetes-validations` failures, evaluated client-side. A rule that cannot be
/// evaluated is an error too, with its kind in the message, so a test expecting the rule's
/// message fails.
pub fn cel_errors(schema: &Value, value: &Value) -> Vec<Rejection> {
    match kube::core::cel::Validator::new().validate(schema, value, None) {
        Ok(()) => Vec::new(),
        Err(errs) => errs
            .into_vec()
            .into_iter()
            .map(|e| match e.kind {
                kube::core::cel::ErrorKind::ValidationFailure => Rejection::new(e.field_path, e.message),
                kind => Rejection::new(e.field_path, format!("{kind:?}: {} (rule {})", e.message, e.rule)),
            })
            .collect(),
    }
}

/// What the apiserver would say: `Ok` or the schema and CEL failures.
pub fn admit(crd: &CustomResourceDefinition, value: &Value) -> Result<(), Vec<Rejection>> {
    let schema = schema_of(crd);
    let mut errors = Vec::new();
    schema_errors(&schema, value, "", &mut errors);
    errors.extend(cel_errors(&schema, value));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}
