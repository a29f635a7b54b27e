"""The worker runner: takes jobs of its types off their task queues and settles each one.

Guarantees (docs/design.md, "Delivery guarantees" 2-10):
- prefetch 1, manual acks; the handler runs on a job thread while the connection's own
  thread keeps pumping (heartbeats, deliveries); the job thread reaches the connection only
  through the I/O bridge, so acks go back via `add_callback_threadsafe`;
- a job is acked only after its outputs, its follow-up job and its events are confirmed;
- PermanentJobError -> job.failed, reject -> dead letters; TransientJobError (or any
  unexpected exception) -> the next back-off queue with attempt+1, then ack; no back-off step
  left -> job.failed, dead letters; undecodable messages -> dead letters, never a requeue loop;
  JobDeferred (another worker holds the job's one-time part) -> back to a back-off queue with
  the same attempt;
- a job redelivered `MAX_DELIVERIES` times (its worker died each time) -> dead letters;
- outputs are keyed by job id and finished by a manifest: a redelivered job whose manifest
  exists is not run again;
- a job over JOB_TIME_LIMIT is settled as a passing fault and its thread interrupted;
- SIGTERM/SIGINT: stop consuming, finish and ack the job in hand, exit 0; a second signal exits
  at once (the broker redelivers the job);
- connection lost: reconnect with back-off and jitter, declare the topology again, carry on.

Modules, one job each (Dramatiq's worker + middleware split is the model):
`runner` (the process: signals, the run/reconnect loop), `consumer` (one job type on one
connection, on its I/O thread: it owns the job in hand and its time limit), `checks` (what a
delivery must be before it runs), `job_thread` (the thread jobs run on, and interrupting it),
`perform` (a job's course on its thread), `settle` (events confirmed, then ack or reject),
`bridge` (job thread -> I/O thread).
"""

from __future__ import annotations

from shared.worker.job_thread import longest_run_s
from shared.worker.perform import Handler
from shared.worker.runner import Worker, run_worker

__all__ = ["Handler", "Worker", "longest_run_s", "run_worker"]
