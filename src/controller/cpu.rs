//! One thread of its own for the operator's CPU-heavy work: the inline verification of each
//! AppNetwork and the check of flows across namespaces.
//!
//! Off the async workers (which keep serving the watches and the writes), and one job at a
//! time: the memory this work needs is one job's working set in one allocator arena, however
//! many reports are due at once. (On `tokio`'s blocking pool every concurrent job had a thread
//! of its own, and glibc gives each thread its own arena, which keeps what it freed: RSS grew
//! with the number of jobs run at once, not with the work.)

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

type Job = Box<dyn FnOnce() + Send>;

/// A handle on the thread (cheap to clone).
#[derive(Clone)]
pub struct Cpu {
    jobs: Arc<Mutex<Option<mpsc::Sender<Job>>>>,
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu {
            jobs: Arc::new(Mutex::new(None)),
        }
    }
}

impl Cpu {
    /// Runs `f` on the thread and returns its result; `None` if the thread could not be
    /// started or `f` panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            let _ = tx.send(out.ok());
        });
        {
            let mut jobs = self.jobs.lock().ok()?;
            if jobs.is_none() {
                let (send, receive) = mpsc::channel::<Job>();
                std::thread::Builder::new()
                    .name("tierflow-cpu".into())
                    .spawn(move || {
                        while let Ok(job) = receive.recv() {
                            job();
                        }
                    })
                    .ok()?;
                *jobs = Some(send);
            }
            jobs.as_ref()?.send(job).ok()?;
        }
        rx.await.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_one_at_a_time_on_one_thread_and_return_their_results() {
        let cpu = Cpu::default();
        let a = cpu.run(|| std::thread::current().id()).await;
        let b = cpu.run(|| std::thread::current().id()).await;
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(a, Some(std::thread::current().id()));
    }

    #[tokio::test]
    async fn a_job_that_panics_gives_none_and_the_thread_goes_on() {
        let cpu = Cpu::default();
        let r: Option<()> = cpu.run(|| panic!("boom")).await;
        assert_eq!(r, None);
        assert_eq!(cpu.run(|| 2 + 2).await, Some(4));
    }
}
