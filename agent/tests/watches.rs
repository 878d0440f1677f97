//! Each component watches exactly the kinds its RBAC rules let it list and
//! watch (`kube::access`): its reflectors' first LISTs, made against a
//! mocked API server, are compared with the table.

use std::collections::BTreeSet;
use std::time::Duration;

use http::Response;
use kube::client::Body;
use mooring_agent::kube::access::{self, classify};
use mooring_agent::kube::stores::Stores;

mod common;
use common::*;

async fn listed(component: Component) -> BTreeSet<(String, String)> {
    let (client, mut api) = mock_client(component);
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let _stores = Stores::start(&client, component, tx);
    let mut seen = BTreeSet::new();
    // Answer every LIST with an empty list; stop when no new request comes.
    while let Ok(Some((req, send))) = tokio::time::timeout(Duration::from_secs(2), api.next_request()).await {
        let (verb, group, resource) =
            classify(req.method(), req.uri().path(), req.uri().query().unwrap_or("")).expect("a resource request");
        if verb == "list" {
            seen.insert((group, resource));
        }
        let list =
            serde_json::json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": []});
        send.send_response(
            Response::builder().status(200).body(Body::from(serde_json::to_vec(&list).unwrap())).unwrap(),
        );
    }
    seen
}

fn table(component: Component) -> BTreeSet<(String, String)> {
    access::rules(component)
        .iter()
        .filter(|r| r.verbs.contains(&"list"))
        .map(|r| (r.api_group.to_string(), r.resource.to_string()))
        .collect()
}

#[tokio::test]
async fn the_controller_lists_what_its_rules_allow_and_nothing_else() {
    assert_eq!(listed(Component::Controller).await, table(Component::Controller));
}

#[tokio::test]
async fn the_speaker_lists_what_its_rules_allow_and_nothing_else() {
    assert_eq!(listed(Component::Speaker).await, table(Component::Speaker));
}
