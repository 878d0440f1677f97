//! Where the node loop's objects come from: manifest files (standalone
//! mode: [`files::FileSource`] over [`manifests::Manifests`]). The
//! cluster's source (reflector stores) is in `crate::kube`.

pub mod files;
pub mod manifests;
