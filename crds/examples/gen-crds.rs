//! Print the CRDs: `cargo run -p mooring-crds --example gen-crds > helm/mooring/crds/mooring.io_crds.yaml`.

fn main() {
    print!("{}", mooring_crds::crds_yaml());
}
