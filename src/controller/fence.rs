//! The write fence of leader election.

use kube::Client;
use tokio::sync::watch;

use crate::leader::Leadership;

/// With leader election, every write goes through this fence: refused unless this replica leads
/// and renewed its lease recently enough (`Leadership::write_until`). Without it, a leader paused
/// past its lease (SIGSTOP, a long stall) that wakes up after another replica took over wrote
/// before its elector noticed (tests/chaos `failover-sigstop`).
pub(crate) fn fenced(inner: Client, leadership: watch::Receiver<Leadership>) -> Client {
    #[derive(Clone)]
    struct Fenced {
        inner: Client,
        leadership: watch::Receiver<Leadership>,
    }
    impl tower::Service<http::Request<kube::client::Body>> for Fenced {
        type Response = http::Response<kube::client::Body>;
        type Error = kube::Error;
        type Future =
            futures::future::BoxFuture<'static, std::result::Result<Self::Response, Self::Error>>;

        fn poll_ready(
            &mut self,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::result::Result<(), Self::Error>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn call(&mut self, req: http::Request<kube::client::Body>) -> Self::Future {
            let l = *self.leadership.borrow();
            let may_write = l.leading
                && l.write_until
                    .is_some_and(|t| tokio::time::Instant::now() < t);
            if req.method() != http::Method::GET && !may_write {
                return Box::pin(async {
                    Err(kube::Error::Service(
                        "write refused: this replica does not hold a current leader lease".into(),
                    ))
                });
            }
            let inner = self.inner.clone();
            Box::pin(async move { inner.send(req).await })
        }
    }
    let ns = inner.default_namespace().to_string();
    Client::new(Fenced { inner, leadership }, ns)
}
