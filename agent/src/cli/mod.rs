//! Commands of the `mooring` binary that only read files and print: `plan` (what Mooring would
//! do with a set of manifests). The long-running commands live with their code (`standalone`,
//! `kube`, `announce`); `import` has its own module.

pub mod plan;
