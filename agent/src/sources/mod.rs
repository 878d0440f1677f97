//! Where objects come from: manifest files (standalone mode) or, later,
//! the Kubernetes API. Both feed the same model.

pub mod manifests;
