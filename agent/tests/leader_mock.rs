//! Leader election against a mocked API server, on tokio's paused clock
//! (time moves only when every task waits, so the durations below are
//! exact): create, renew, wait, take over, lose a race; a renewing Lease
//! is never taken whatever its timestamps say; a hung renewal steps the
//! leader down before any standby may take over.

use std::time::Duration;

use http::Method;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use mooring_agent::kube::leader::{self, Elector, LeaseConfig, Outcome};
use serde_json::{json, Value};
use tokio::time::Instant;

mod common;
use common::*;

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/mooring-system/leases/mooring-controller";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/mooring-system/leases";

fn lease(holder: &str, rv: &str, renewed_secs_ago: i64) -> Value {
    let t = k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(renewed_secs_ago);
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
           "metadata": {"name": "mooring-controller", "namespace": "mooring-system", "resourceVersion": rv},
           "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": t.to_string(), "leaseTransitions": 3}})
}

fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "code": code, "message": reason})
}

fn elector(client: kube::Client) -> Elector {
    Elector::new(
        Api::<Lease>::namespaced(client, "mooring-system"),
        LeaseConfig::new("mooring-controller", "controller-0"),
    )
}

const CALL: Duration = Duration::from_secs(10);

#[tokio::test(start_paused = true)]
async fn create_renew_wait_take_over_and_lose_a_race() {
    let (client, mut api) = mock_client(Component::Controller);
    let mut e = elector(client);
    let server = tokio::spawn(async move {
        // 1. No lease: create it.
        expect(&mut api, Method::GET, LEASE, 404, status(404, "NotFound")).await;
        let (_, body, _) = expect(&mut api, Method::POST, LEASES, 201, lease("controller-0", "1", 0)).await;
        assert_eq!(
            (body["spec"]["holderIdentity"].clone(), body["spec"]["leaseDurationSeconds"].clone()),
            (json!("controller-0"), json!(15))
        );
        // 2. Ours: renew, with the resourceVersion (compare-and-swap).
        expect(&mut api, Method::GET, LEASE, 200, lease("controller-0", "7", 4)).await;
        let (_, body, _) = expect(&mut api, Method::PUT, LEASE, 200, lease("controller-0", "8", 0)).await;
        assert_eq!(
            (body["metadata"]["resourceVersion"].clone(), body["spec"]["leaseTransitions"].clone()),
            (json!("7"), json!(3))
        );
        // 3. Someone else's, first seen: wait, no write — even though its
        // renewTime is a minute old by our clock.
        expect(&mut api, Method::GET, LEASE, 200, lease("controller-1", "20", 60)).await;
        api
    });
    assert_eq!(e.try_acquire(CALL).await, Outcome::Acquired);
    assert_eq!(e.try_acquire(CALL).await, Outcome::Renewed);
    assert_eq!(e.try_acquire(CALL).await, Outcome::HeldByOther);
    let mut api = server.await.unwrap();
    tokio::time::sleep(Duration::from_secs(15)).await;
    let server = tokio::spawn(async move {
        // 4. Unchanged for the lease duration as seen here: take over.
        expect(&mut api, Method::GET, LEASE, 200, lease("controller-1", "20", 60)).await;
        let (_, body, _) = expect(&mut api, Method::PUT, LEASE, 200, lease("controller-0", "21", 0)).await;
        assert_eq!(
            (body["spec"]["holderIdentity"].clone(), body["spec"]["leaseTransitions"].clone()),
            (json!("controller-0"), json!(4))
        );
        // 5. Released by its holder (empty holder): take it at once; lose the race (409).
        expect(&mut api, Method::GET, LEASE, 200, lease("", "30", 0)).await;
        expect(&mut api, Method::PUT, LEASE, 409, status(409, "Conflict")).await;
    });
    assert_eq!(e.try_acquire(CALL).await, Outcome::Acquired);
    assert_eq!(e.try_acquire(CALL).await, Outcome::HeldByOther);
    server.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_renewing_lease_is_never_taken_whatever_its_timestamps_say() {
    let (client, mut api) = mock_client(Component::Controller);
    let mut e = elector(client);
    // The holder's clock is an hour behind ours: its renewTime looks
    // ancient, but the Lease changes every round — it is being renewed.
    let server = tokio::spawn(async move {
        for rv in 100..130 {
            expect(&mut api, Method::GET, LEASE, 200, lease("controller-1", &rv.to_string(), 3600)).await;
        }
        api
    });
    for _ in 0..30 {
        assert_eq!(e.try_acquire(CALL).await, Outcome::HeldByOther);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let mut api = server.await.unwrap();
    assert!(tokio::time::timeout(Duration::ZERO, api.next_request()).await.is_err(), "no takeover attempted");
}

#[tokio::test(start_paused = true)]
async fn a_hung_renewal_steps_down_before_a_standby_may_take_over() {
    let (client, mut api) = mock_client(Component::Controller);
    let cfg = LeaseConfig::new("mooring-controller", "controller-0");
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let (mut leading, _task) = leader::run(Api::<Lease>::namespaced(client, "mooring-system"), cfg.clone(), stopped);
    // Acquire, then the API server stops answering (the request hangs).
    expect(&mut api, Method::GET, LEASE, 404, status(404, "NotFound")).await;
    let acquired = Instant::now();
    expect(&mut api, Method::POST, LEASES, 201, lease("controller-0", "1", 0)).await;
    leading.wait_for(|l| *l).await.unwrap();
    let (_hung, _answer) = api.next_request().await.expect("the next renewal");
    tokio::time::timeout(Duration::from_secs(60), leading.wait_for(|l| !*l))
        .await
        .expect("still leading a minute into a hung renewal")
        .unwrap();
    let stepped_down = acquired.elapsed();
    // A standby takes over no sooner than a lease duration after it last saw
    // the Lease change (our create): we must be gone before that.
    assert!(stepped_down <= cfg.renew_deadline, "stepped down after {stepped_down:?}");
    assert!(stepped_down < cfg.lease_duration);
    assert!(stepped_down >= cfg.renew_deadline - cfg.retry_period, "not before the renew deadline: {stepped_down:?}");
}

#[tokio::test(start_paused = true)]
async fn a_stopping_leader_releases_the_lease() {
    let (client, mut api) = mock_client(Component::Controller);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (mut leading, task) = leader::run(
        Api::<Lease>::namespaced(client, "mooring-system"),
        LeaseConfig::new("mooring-controller", "controller-0"),
        stopped,
    );
    expect(&mut api, Method::GET, LEASE, 404, status(404, "NotFound")).await;
    expect(&mut api, Method::POST, LEASES, 201, lease("controller-0", "1", 0)).await;
    leading.wait_for(|l| *l).await.unwrap();
    stop.send(true).unwrap();
    expect(&mut api, Method::GET, LEASE, 200, lease("controller-0", "2", 0)).await;
    let (_, body, _) = expect(&mut api, Method::PUT, LEASE, 200, lease("", "3", 0)).await;
    assert!(body["spec"].get("holderIdentity").is_none_or(|h| h.is_null()), "{body}");
    task.await.unwrap();
    assert!(!*leading.borrow());
}
