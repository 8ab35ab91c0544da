//! The node's worker pool: where agents' slow work (training, aggregation and scoring, audit
//! re-runs) runs, away from the block callback that holds the ledger store.
//!
//! ```text
//!  block callback ──try_send──▶ jobs (bounded) ──▶ worker 1..N ──send──▶ results (bounded)
//!   (decides, returns)           full: refused,      (own threads         │
//!                                decided again at     on tokio)            ▼
//!                                the next block                 result task: store + observer
//!                                                               locked briefly, agent acts
//! ```
//!
//! Both queues are bounded: a full job queue refuses the job (the agent decides the step again
//! at the next block), and a worker waits while the result queue is full. On the deterministic
//! runtime a job takes no simulated time (its result is acted on a few scheduler cycles later,
//! at the height it was decided at), and a run is the same bytes run after run for a given
//! number of workers; simulations keep [`WorkerConfig::default`] whatever the machine.

use std::sync::{Arc, Mutex};

use cairn_ledger::store::StateRead;
use commonware_runtime::{Metrics, Spawner};
use futures::channel::mpsc;
use futures::lock::Mutex as AsyncMutex;
use futures::{SinkExt, StreamExt};

use crate::protocol::{Done, Job};

/// Worker pool settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Workers, each running one job at a time (on its own thread on tokio). A simulation keeps
    /// the default so that its bytes do not depend on the machine.
    pub workers: usize,
    /// Jobs that may wait for a worker; one more is refused.
    pub queue: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            queue: 16,
        }
    }
}

impl WorkerConfig {
    /// One worker per core but one (left to consensus and the network), at least one.
    pub fn for_this_machine() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            workers: cores.saturating_sub(1).max(1),
            ..Self::default()
        }
    }
}

/// Where the block callback hands jobs to the pool.
#[derive(Clone, Debug)]
pub struct JobSender(mpsc::Sender<Job>);

impl JobSender {
    /// Queues `job`, or gives it back when the queue is full or the pool has stopped.
    pub fn try_send(&mut self, job: Job) -> Result<(), Job> {
        self.0.try_send(job).map_err(mpsc::TrySendError::into_inner)
    }
}

/// What acts on a finished job: the node's observer, with the ledger state of the moment.
pub trait OnDone: Send + 'static {
    /// Acts on `done` with `state`, the latest committed state.
    fn on_done(&mut self, state: &dyn StateRead, done: Done);
}

/// Starts `config.workers` workers and the task that hands their results to `observer` (with
/// `store` locked, then `observer`: the order the finalizer takes them in). Returns the job
/// queue's sender; the pool stops when every sender is dropped.
pub fn start<E, S, O>(
    context: &E,
    config: WorkerConfig,
    store: Arc<Mutex<S>>,
    observer: Arc<Mutex<O>>,
) -> JobSender
where
    E: Spawner + Metrics,
    S: StateRead + Send + 'static,
    O: OnDone,
{
    let (jobs_tx, jobs_rx) = mpsc::channel::<Job>(config.queue.saturating_sub(1));
    let (results_tx, mut results_rx) = mpsc::channel::<Done>(config.queue.saturating_sub(1));
    let jobs_rx = Arc::new(AsyncMutex::new(jobs_rx));
    for _ in 0..config.workers.max(1) {
        let jobs_rx = jobs_rx.clone();
        let mut results_tx = results_tx.clone();
        context
            .child("agent_worker")
            .dedicated()
            .spawn(move |_| async move {
                loop {
                    // One worker waits on the queue at a time; the others wait for the lock.
                    let job = jobs_rx.lock().await.next().await;
                    let Some(job) = job else { break };
                    let done = job.run();
                    if results_tx.send(done).await.is_err() {
                        break;
                    }
                }
            });
    }
    drop(results_tx);
    context.child("agent_results").spawn(move |_| async move {
        while let Some(done) = results_rx.next().await {
            let (Ok(store), Ok(mut observer)) = (store.lock(), observer.lock()) else {
                tracing::error!("a lock was poisoned; job results are no longer acted on");
                break;
            };
            observer.on_done(&*store, done);
        }
    });
    JobSender(jobs_tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::agent::jobs::Output;
    use crate::protocol::{JobKey, JobKind};
    use cairn_ledger::store::MemoryStore;
    use cairn_ledger::Address;
    use commonware_runtime::{deterministic, Clock, Runner};
    use std::time::Duration;

    #[derive(Default)]
    struct Collect(Vec<(JobKey, bool)>);

    impl OnDone for Collect {
        fn on_done(&mut self, _state: &dyn StateRead, done: Done) {
            let panicked = matches!(done.output, Output::Panicked(_));
            self.0.push((done.key(), panicked));
        }
    }

    fn job(round: u32, panics: bool) -> Job {
        let key = JobKey {
            task: 0,
            round,
            kind: JobKind::Train,
        };
        Job::new(key, Address([0; 20]), move || {
            assert!(!panics, "job {round} panics");
            Output::Trained(Err(format!("round {round}")))
        })
    }

    #[test]
    fn jobs_beyond_the_queue_are_refused_and_every_queued_one_comes_back() {
        deterministic::Runner::default().start(|context| async move {
            let store = Arc::new(Mutex::new(MemoryStore::new()));
            let observer = Arc::new(Mutex::new(Collect::default()));
            let config = WorkerConfig {
                workers: 2,
                queue: 3,
            };
            let mut jobs = start(&context, config, store, observer.clone());
            // Nothing runs before this task yields: the queue holds three, the fourth is
            // handed back.
            let accepted: Vec<bool> = (0..4)
                .map(|round| jobs.try_send(job(round, round == 1)).is_ok())
                .collect();
            assert_eq!(accepted, [true, true, true, false]);
            context.sleep(Duration::from_millis(100)).await;
            let mut done = observer.lock().unwrap().0.clone();
            done.sort();
            let rounds: Vec<(u32, bool)> = done.iter().map(|(key, p)| (key.round, *p)).collect();
            // The panicking job comes back as a failure; the workers go on.
            assert_eq!(rounds, [(0, false), (1, true), (2, false)]);
            assert!(jobs.try_send(job(5, false)).is_ok(), "room again");
            context.sleep(Duration::from_millis(100)).await;
            assert_eq!(observer.lock().unwrap().0.len(), 4);
        });
    }
}
