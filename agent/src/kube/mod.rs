//! Kubernetes mode: the controller (allocates, writes Service and Eip
//! status and Events, one leader by Lease) and the speaker (announces its
//! node's routes, writes its sessions into BgpPeer status). Both feed the
//! watched objects into the same model as standalone mode.

pub mod access;
pub mod controller;
pub mod leader;
pub mod peer_status;
pub mod reconcile;
pub mod secrets;
pub mod speaker;
pub mod stores;

/// The Kubernetes client from the environment (in-cluster service account,
/// else $KUBECONFIG or ~/.kube/config), or one clear line saying there is
/// none (kube's own error repeats its whole inference chain).
pub async fn client() -> anyhow::Result<kube::Client> {
    match kube::Config::infer().await {
        Ok(cfg) => kube::Client::try_from(cfg).map_err(|e| anyhow::anyhow!("connecting to the Kubernetes API: {e}")),
        Err(_) => anyhow::bail!(
            "not in a cluster: no service account (not running in a pod) and no kubeconfig — set KUBECONFIG \
             (or ~/.kube/config), or run in a pod; for no Kubernetes at all use `mooring standalone`"
        ),
    }
}
