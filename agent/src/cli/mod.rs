//! Commands of the `mooring` binary that only read and print: `plan` (what Mooring would
//! do with a set of manifests) and `status` (what a running node does). The long-running commands live with their code (`standalone`,
//! `kube`, `announce`); `import` has its own module.

pub mod kubectl;
pub mod plan;
pub mod status;
