//! Test helpers: an offline stand-in for the apiserver's admission of a custom resource.
//!
//! `admit` applies the CRD schema's structural checks that the apiserver does (type, bounds,
//! lengths, pattern, enum, required, list sizes, set uniqueness) with a small checker written
//! here, then the CEL `x-kubernetes-validations` with kube's client-side evaluator (kube-cel),
//! which applies schema defaults first, as the apiserver does.

#![allow(dead_code)]

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// The openAPIV3Schema of the CRD's only version, as JSON.
pub fn schema_of(crd: &CustomResourceDefinition) -> Value {
    let s = crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema.as_ref().unwrap();
    serde_json::to_value(s).unwrap()
}

/// Structural checks of `value` against `schema`, as messages `path: problem`.
pub fn schema_errors(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    if value.is_null() {
        if schema.get("nullable") != Some(&Value::Bool(true)) {
            out.push(format!("{path}: null is not allowed"));
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
        out.push(format!("{path}: expected {}", ty.unwrap()));
        return;
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if n < min {
                out.push(format!("{path}: {n} is below minimum {min}"));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                out.push(format!("{path}: {n} is above maximum {max}"));
            }
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
            if len < min {
                out.push(format!("{path}: shorter than {min}"));
            }
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                out.push(format!("{path}: longer than {max}"));
            }
        }
        if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
            if !regex::Regex::new(p).unwrap().is_match(s) {
                out.push(format!("{path}: {s:?} does not match {p}"));
            }
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            out.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
            if items.len() as u64 > max {
                out.push(format!("{path}: more than {max} items"));
            }
        }
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                out.push(format!("{path}: fewer than {min} items"));
            }
        }
        if schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
            for (i, v) in items.iter().enumerate() {
                if items[..i].contains(v) {
                    out.push(format!("{path}[{i}]: duplicate {v}"));
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
                    out.push(format!("{path}.{r}: required"));
                }
            }
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (k, v) in obj {
                if let Some(s) = props.get(k) {
                    schema_errors(s, v, &format!("{path}.{k}"), out);
                }
            }
        }
    }
}

/// CEL `x-kubernetes-validations` failures, evaluated client-side.
pub fn cel_errors(schema: &Value, value: &Value) -> Vec<String> {
    match kube::core::cel::Validator::new().validate(schema, value, None) {
        Ok(()) => Vec::new(),
        Err(errs) => errs.into_vec().into_iter().map(|e| format!("{e} [{:?}]", e.kind)).collect(),
    }
}

/// What the apiserver would say: `Ok` or the schema and CEL failures.
pub fn admit(crd: &CustomResourceDefinition, value: &Value) -> Result<(), Vec<String>> {
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
