"""Session-to-worker affinity: a Claude Code session goes back to the worker that has its prompt.

Each worker's engine keeps the KV cache of the last prompt each of its slots served, so a
session's next request evaluates only what it added, if it reaches the same worker. A queue
endpoint gives a job to whichever worker takes it first; a load-balancing endpoint lets the
client name the worker: every reply carries ``X-Runpod-Worker-Id``, and a request that sends
it back is routed to that worker (runpod/docs serverless/load-balancing/worker-affinity.mdx):
``<id>`` prefers it (soft), ``strict <id>`` waits for it (404 ``affinity_worker_gone`` once it
is gone), ``strict-resume <id>`` also resumes it if it scaled down.

Gateway calls, per load-balanced RunPod backend (session = ``X-Claude-Code-Session-Id``):

- before sending: ``header(session, now)``; send its value as ``X-Runpod-Worker-Id`` if not None;
- after a reply (answer, ping, prefill): ``record(session, reply's X-Runpod-Worker-Id, now)``;
- on a 404 ``affinity_worker_gone``: ``forget(session)``, and resend without the header.

A mapping expires after the endpoint's idle timeout: the worker, and its cache, are gone by
then, and ``strict-resume`` would only make the session wait for that one worker's cold start.
Memory is bounded: past ``max_sessions`` the least recently used session is dropped.
"""

from __future__ import annotations

from collections import OrderedDict

from ccrelay.coldstart.settings import AffinitySettings

__all__ = ["WorkerAffinity"]

_PREFIX = {"soft": "", "strict": "strict ", "strict-resume": "strict-resume "}


class WorkerAffinity:
    def __init__(self, settings: AffinitySettings, idle_timeout_s: float) -> None:
        self.settings = settings
        self.expire_after_s = settings.expire_after_s or idle_timeout_s
        self._workers: OrderedDict[str, tuple[str, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.settings.mode != "off"

    def __len__(self) -> int:
        return len(self._workers)

    def worker(self, session_id: str, now: float) -> str | None:
        """The worker this session should go back to, if it is still likely up."""
        entry = self._workers.get(session_id)
        if entry is None:
            return None
        worker_id, seen_at = entry
        if now - seen_at >= self.expire_after_s:
            del self._workers[session_id]
            return None
        return worker_id

    def header(self, session_id: str | None, now: float) -> str | None:
        """The ``X-Runpod-Worker-Id`` value for this session's next request (None: send none,
        which also unpins the worker so it may scale down)."""
        if not self.enabled or not session_id:
            return None
        worker_id = self.worker(session_id, now)
        if worker_id is None:
            return None
        return _PREFIX[self.settings.mode] + worker_id

    def record(self, session_id: str | None, worker_id: str | None, now: float) -> None:
        """A reply for this session came from `worker_id` (a reply's ``X-Runpod-Worker-Id``)."""
        if not self.enabled or not session_id or not worker_id or not _plain(worker_id):
            return
        self._workers[session_id] = (worker_id, now)
        self._workers.move_to_end(session_id)
        while len(self._workers) > self.settings.max_sessions:
            self._workers.popitem(last=False)

    def forget(self, session_id: str) -> None:
        self._workers.pop(session_id, None)


def _plain(worker_id: str) -> bool:
    """A worker id is a short token: a value with spaces or control characters would change
    the header's meaning (``strict x``) or break it."""
    return len(worker_id) <= 128 and worker_id.isprintable() and " " not in worker_id
