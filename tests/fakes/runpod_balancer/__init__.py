"""A fake of RunPod's load balancer: a load-balancing serverless endpoint, on 127.0.0.1.

Sources: runpod/docs at a900806e253c4f8c16da27d1a4370e72456da4cb,
``serverless/load-balancing/overview.mdx`` ("overview") and ``worker-affinity.mdx``
("affinity"). The statuses of the two timeouts are only in an older revision of the overview,
runpod/docs d81ff9c1ae7e2b3bdc49c2301b300de03209419c (l.187-188, "overview@d81ff9c"); the
current page states the limits without them and contradicts nothing. [inferred] marks what no
page says; each is a choice a test can see.

- ``https://{id}.api.runpod.ai/<any path>`` (overview): every method and path goes to one
  worker's own HTTP server, body and headers as sent, and the worker's reply comes back as it
  is written (streams too). ``Authorization`` and ``X-Runpod-Worker-Id`` are the load
  balancer's and are not passed on [inferred: no page says either way].
- Auth: ``Authorization: Bearer <key>``, as every example sends; anything else is 401
  ``{"error": "unauthorized"}`` [inferred: no page says what RunPod answers].
- Health (overview, "Worker health management"): each worker's ``/ping`` (``health_path``,
  ``HEALTH_CHECK_PATH``) is polled every ``ping_interval_s`` [the interval is not documented]:
  200 healthy, in the pool; 204 initializing; any other answer, a refused connection included,
  unhealthy and out of the pool. Only healthy workers are sent requests.
- Cold start (overview: counted "from /ping first returning 204 until it first returns 200"):
  a started worker answers ``/ping`` 204, and every other path 503, for ``cold_start_s`` (as
  the ccrelay worker's boot face does, ``ccrelay_worker.starting``), then serves its app.
- Scale up (REST v2 ``RequestCountScaling``, required for load balancers: "Adjusts the number
  of workers based on active in-flight requests"): a worker with ``request_count`` requests in
  flight is at capacity [inferred: the affinity page's "at capacity"]; while the requests in
  flight and waiting need more workers than are up, another starts, up to ``max_workers``.
- Scale down (affinity: "Workers scale down after being idle (no requests) for a set period
  ... a worker receiving regular traffic ... will never scale down"): a worker with nothing in
  flight for ``idle_timeout_s`` (the endpoint's ``workers.idleTimeout``) stops.
- Waiting (overview: "Request timeout: 2 min (no worker available)"): with no healthy worker
  that has room, a request waits up to ``wait_limit_s``, then gets 400 (overview@d81ff9c)
  ``{"error": "no workers available"}`` (the body: build-a-worker.mdx and vllm-worker.mdx).
- Processing (overview: 5.5 min per request): past ``processing_limit_s`` a request ends with
  524 (overview@d81ff9c), or, once the worker's reply has begun, its connection is cut
  [inferred].
- Payload (overview: 30 MB, request and response): a larger request body is refused 413
  ``{"error": "payload too large"}`` [inferred: no status is given]. Replies are not capped.
- Routing: an unpinned request goes to the next healthy worker with room, round robin
  [inferred: overview says only "distributing requests across the worker pool"].
- Affinity (affinity): every reply a worker gave carries ``X-Runpod-Worker-Id: <id>``. The
  request header pins: empty or absent, normal routing; ``<id>`` (soft) prefers that worker and
  falls back to normal routing when it is gone or at capacity; ``strict <id>`` waits for it up
  to ``strict_wait_s`` (~5 min) then 400 ``worker_timeout``, and answers 404
  ``affinity_worker_gone`` when it is not in the active set; ``strict-resume <id>`` also starts
  a scaled-down worker again (404 only when it is gone for good: `terminate_worker`). The
  bodies, ``{"error": "<reason>"}``, copy the documented "no workers available" one [inferred:
  their shape is not documented]. The balancer's own refusals name no worker [inferred].

Every request is recorded in ``.routed`` (`Routed`: the worker that served it, the pin sent,
its headers and body), for assertions. Workers are real HTTP servers (fleet.py):
``worker_app(worker_id)`` builds each one's aiohttp application (`http_mode_worker`: this
repository's worker in HTTP mode over a real ``ChatService``; or `scripted_worker`), anew at
every start. balancer.py is the front door: auth, limits, routing, affinity, waiting.
"""

from tests.fakes.runpod_balancer.balancer import (
    PAYLOAD_LIMIT,
    WORKER_HEADER,
    FakeLoadBalancer,
    Routed,
)
from tests.fakes.runpod_balancer.fleet import Worker, WorkerApp, http_mode_worker, scripted_worker

__all__ = [
    "PAYLOAD_LIMIT",
    "WORKER_HEADER",
    "FakeLoadBalancer",
    "Routed",
    "Worker",
    "WorkerApp",
    "http_mode_worker",
    "scripted_worker",
]
