//! The Helm chart ships exactly what `crds_yaml()` generates.

#[test]
fn chart_crds_match_generated() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../helm/mooring/crds/mooring.io_crds.yaml");
    let shipped = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        shipped == mooring_crds::crds_yaml(),
        "helm/mooring/crds/mooring.io_crds.yaml differs from mooring_crds::crds_yaml() (or is missing). \
         Regenerate it from the workspace root with\n  \
         cargo run -p mooring-agent -- crds > helm/mooring/crds/mooring.io_crds.yaml\n\
         or, without building the agent,\n  \
         cargo run -p mooring-crds --example gen-crds > helm/mooring/crds/mooring.io_crds.yaml"
    );
}
