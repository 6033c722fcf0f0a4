"""The handler under the runpod SDK's job loop, taking jobs from RunPod's queue (the fake's).

``python -m ccrelay_handler`` runs as RunPod runs it (`runpod_sdk`: tests/runpod_sdk_worker.py):
the SDK asks the fake's job-take API for work, posts every output the handler yields, and
stops a job RunPod cancels. What a client of the endpoint sees is then what the real handler
and the real SDK made of it: the fake only keeps the queue (tests/fakes/runpod_workers.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from ccrelay_wire.sse import SSEDecoder
from tests.conftest import eventually
from tests.runpod_sdk_worker import RunPodStack

pytestmark = pytest.mark.slow

REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 256,
    "messages": [{"role": "user", "content": "Write hello world in Python"}],
}


def messages_job(**fields: Any) -> dict[str, Any]:
    return {"openai_route": "/v1/messages", "openai_input": {**REQUEST, **fields}}


def events(text: str) -> list[dict[str, Any]]:
    decoder = SSEDecoder()
    decoded = decoder.feed(text.encode()) + decoder.flush()
    return [json.loads(event.data) for event in decoded]


class Client:
    """The endpoint's client side: RunPod's job API with the account's key."""

    def __init__(self, stack: RunPodStack, http: aiohttp.ClientSession) -> None:
        self.url = stack.runpod.endpoint_url
        self.http = http
        self.headers = {"Authorization": f"Bearer {stack.runpod.api_key}"}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(
            method, self.url + path, json=body, headers=self.headers
        ) as reply:
            assert reply.status == 200, await reply.text()
            return await reply.json()

    async def until_final(self, job_id: str) -> dict[str, Any]:
        outputs: list[Any] = []
        while True:
            reply = await self.call("GET", f"/stream/{job_id}")
            outputs += [item["output"] for item in reply["stream"]]
            if reply["status"] in ("COMPLETED", "FAILED", "CANCELLED") and not reply["stream"]:
                return {**reply, "outputs": outputs}
            await asyncio.sleep(0.05)


@pytest.fixture
async def client(runpod_sdk: RunPodStack) -> Any:
    async with aiohttp.ClientSession() as http:
        yield Client(runpod_sdk, http)


async def test_a_streamed_job_is_taken_posted_and_completed_through_the_sdk(
    runpod_sdk: RunPodStack, client: Client
) -> None:
    submitted = await client.call("POST", "/run", {"input": messages_job(stream=True)})
    job_id = submitted["id"]
    final = await client.until_final(job_id)
    assert final["status"] == "COMPLETED"
    streamed = final["outputs"]
    assert all(isinstance(item, str) for item in streamed)  # SSE text, one event a yield
    kinds = [event["type"] for event in events("".join(streamed))]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert events(streamed[0])[0]["message"]["x_ccrelay_cache"] == "miss"
    status = await client.call("GET", f"/status/{job_id}")
    assert status["output"] == streamed  # return_aggregate_stream: every yield, in order

    queue = runpod_sdk.runpod.queue
    assert queue is not None
    # OLLAMA_NUM_PARALLEL (4) slots: the batch job-take API, asking for the free ones and
    # saying whether a job runs (rp_job._job_get_url, rp_scale.JobScaler.get_jobs)
    takes = queue.seen("job-take")
    assert {take.path for take in takes} == {"/v2/fakeendpoint01/job-take-batch/worker-sdk-1"}
    assert {int(take.query["batch_size"]) for take in takes} <= {1, 2, 3, 4}
    assert "1" in {take.query["job_in_progress"] for take in takes}  # asked while ours ran
    posts = queue.seen("job-stream/") + queue.seen("job-done/")
    assert len(queue.seen("job-stream/")) == len(streamed)
    assert [p.query["isStream"] for p in queue.seen("job-done/")] == ["true"]
    for post in posts:  # the worker's own key, as it is (http_client.get_auth_header)
        assert post.headers["Authorization"] == queue.worker_key
        assert post.headers["X-Request-ID"] == job_id
        assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert runpod_sdk.worker.wait_verdicts(1) == ["miss"]


async def test_the_openai_route_writes_each_event_as_the_sdk_posts_it(
    runpod_sdk: RunPodStack, client: Client
) -> None:
    runpod_sdk.ollama.chunk_delay = 0.3  # the engine takes its time after the first piece
    url = client.url + "/openai/v1/messages"
    body = {**REQUEST, "stream": True}
    async with client.http.post(url, json=body, headers=client.headers) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "text/event-stream"
        first = await reply.content.readuntil(b"\n\n")
        (job,) = runpod_sdk.runpod.jobs.values()
        assert job.status == "IN_PROGRESS"  # relayed while the worker still works
        rest = await reply.read()
    text = (first + rest).decode()
    assert text == "".join(job.produced)  # what the SDK posted, verbatim, in order
    assert job.input == {"openai_route": "/v1/messages", "openai_input": body}
    assert events(text)[0]["type"] == "message_start"


async def test_a_plain_request_on_the_openai_route_is_the_message(client: Client) -> None:
    async with client.http.post(
        client.url + "/openai/v1/messages", json=REQUEST, headers=client.headers
    ) as reply:
        assert reply.status == 200
        message = await reply.json()
    assert message["type"] == "message"
    assert message["content"] == [{"type": "text", "text": "Echo: Write hello world in Python"}]


async def test_a_refused_request_fails_the_job_with_the_handlers_code(client: Client) -> None:
    reply = await client.call("POST", "/runsync", {"input": messages_job(max_tokens=0)})
    assert reply["status"] == "FAILED"
    error = json.loads(reply["error"])  # a string (the SDK's rule), JSON inside
    assert error["code"] == "invalid_input"
    assert "max_tokens" in error["message"]


async def test_a_cancelled_job_is_stopped_on_the_worker(
    runpod_sdk: RunPodStack, client: Client
) -> None:
    runpod_sdk.ollama.delay = 30.0  # the engine holds the job's request
    submitted = await client.call("POST", "/run", {"input": messages_job()})
    job = runpod_sdk.runpod.jobs[submitted["id"]]
    await eventually(lambda: runpod_sdk.ollama.chat_requests, within=10)
    cancelled = await client.call("POST", f"/cancel/{job.id}")
    assert cancelled["status"] == "CANCELLED"
    queue = runpod_sdk.runpod.queue
    assert queue is not None
    # the stop channel told the worker, which cancels the handler's task (rp_scale.stop_job)
    # ... and the handler saw CancelledError: its request line says so
    await eventually(lambda: f"outcome=cancelled id={job.id}" in runpod_sdk.worker.log(), 10)
    runpod_sdk.ollama.delay = 0.0
    after = await client.call("POST", "/runsync", {"input": messages_job(max_tokens=99)})
    assert after["status"] == "COMPLETED"  # the worker is free again
    done = [r.path for r in queue.seen("job-done/")]
    assert not [path for path in done if path.endswith(job.id)]  # nothing posted for it
    assert (await client.call("GET", f"/status/{job.id}"))["status"] == "CANCELLED"


async def test_health_counts_the_worker_and_models_reach_it(client: Client) -> None:
    health = await client.call("GET", "/health")
    assert health["workers"] == {"idle": 1, "running": 0}
    models = await client.call("GET", "/openai/v1/models")
    assert [model["id"] for model in models["data"]] == ["qwen3-coder:30b"]
