"""Smaller parts of the deployment: serverless.yml parsing rules, the REST client's tolerance,
retries and errors, and check_endpoint's verdicts (against the fake RunPod API)."""

from __future__ import annotations

import aiohttp
import pytest
from pydantic import SecretStr

from ccrelay.deploy import check_endpoint, parse_spec
from ccrelay.deploy.errors import (
    RunPodAPIError,
    RunPodNotFound,
    RunPodServerError,
    RunPodTransportError,
    ServerlessConfigError,
)
from ccrelay.deploy.rest import RunPodRest, _as_list
from tests.fakes.runpod_rest import API_KEY, FakeRunPod

MINIMAL = """\
name: ep
image: example/worker:1
gpu: {types: [ADA_24]}
"""


def test_defaults_and_reference_forms() -> None:
    text = (
        MINIMAL
        + "env:\n  A: ${A_VAR:-fallback}\n  B: literal $${NOT_A_VAR}\n  C: true\n  D: ${D_VAR}\n"
    )
    spec = parse_spec(text, {"D_VAR": "from-env"})
    assert spec.env == {
        "A": "fallback",
        "B": "literal ${NOT_A_VAR}",
        "C": "true",
        "D": "from-env",
        "CCRELAY_MODEL": "qwen3-coder:30b",
    }
    assert spec.secret_keys == {"A", "D"}, "only values that came from a reference are secret"
    assert spec.spec.workers.min == 0 and spec.spec.flashboot == "FLASHBOOT"
    assert spec.spec.template_name == "ep-template"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("env:\n  CCRELAY_MODEL: x\n", "CCRELAY_MODEL is set from `model:`"),
        ("env:\n  bad-name: x\n", "is not a valid environment variable name"),
        (
            "data_centers: [US-TX-3]\nnetwork_volume: {name: v, size_gb: 50, data_center: EU-RO-1}\n",
            "workers must run where their volume is",
        ),
        (
            "network_volume: {id: v1, size_gb: 50}\n",
            "give either id, or name + size_gb + data_center",
        ),
        ("template: {name: t, image: x}\n", "template.image: unknown field"),
    ],
)
def test_rules(extra: str, expected: str) -> None:
    with pytest.raises(ServerlessConfigError) as caught:
        parse_spec(MINIMAL + extra, {}, source="my.yml")
    assert str(caught.value).startswith("my.yml: ")
    assert expected in str(caught.value)


def test_every_problem_is_listed_at_once_without_echoing_values() -> None:
    text = "name: ep\nimage: example/worker\ngpu: {types: []}\nworkers: {max: 0}\nsecret: hunter2\n"
    with pytest.raises(ServerlessConfigError) as caught:
        parse_spec(text, {})
    message = str(caught.value)
    assert "4 problems" in message
    for path in ("image:", "gpu.types:", "workers.max:", "secret: unknown field"):
        assert path in message
    assert "hunter2" not in message


def test_list_answers_may_be_wrapped() -> None:
    items = [{"id": "a"}, {"id": "b"}]
    assert _as_list(items) == items
    assert _as_list({"data": items, "nextCursor": None}) == items
    assert _as_list({"endpoints": items}) == items
    assert _as_list({"unexpected": 1}) == []


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


async def test_a_refused_body_names_every_field_runpod_refused(
    runpod_rest_server: FakeRunPod,
) -> None:
    """RunPod's 422 is an RFC 9457 problem whose `detail` says only "request validation failed":
    the `errors` list is what says which field, so it must reach the user."""
    body = {"name": "ep", "type": "QUEUE", "image": "x:1", "scaling": {"type": "QUEUE_DELAY"}}
    async with aiohttp.ClientSession() as session:
        rest = RunPodRest(session, SecretStr(API_KEY), base_url=runpod_rest_server.api_url)
        with pytest.raises(RunPodAPIError) as caught:
            await rest.create_endpoint(body)
    message = str(caught.value)
    assert message.startswith("POST /serverless: RunPod rejected the request (HTTP 422: ")
    assert "request validation failed" in message and "$.scaling" in message
    assert caught.value.status == 422
    assert len(runpod_rest_server.calls) == 1, "a refused body is not sent again"
    assert len(runpod_rest_server.rejected) == 1
    runpod_rest_server.rejected.clear()  # refused on purpose (the fixture fails on any other)


async def test_backoff_is_jittered_and_retry_after_comes_first(
    runpod_rest_server: FakeRunPod,
) -> None:
    runpod_rest_server.fail_next = [503, 503, 429]  # the fake's 429 says Retry-After: 0
    sleeps = Sleeps()
    async with aiohttp.ClientSession() as session:
        rest = RunPodRest(
            session,
            SecretStr(API_KEY),
            base_url=runpod_rest_server.api_url,
            sleep=sleeps,
            rng=lambda: 0.5,
        )
        assert await rest.list_endpoints() == []
    assert sleeps == [0.25, 0.5, 0.0], "half of 0.5 s, half of 1 s, then RunPod's Retry-After"


async def test_retries_end_with_the_last_failure(runpod_rest_server: FakeRunPod) -> None:
    runpod_rest_server.fail_next = [500] * 4
    sleeps = Sleeps()
    async with aiohttp.ClientSession() as session:
        rest = RunPodRest(
            session, SecretStr(API_KEY), base_url=runpod_rest_server.api_url, sleep=sleeps
        )
        with pytest.raises(RunPodServerError) as caught:
            await rest.list_templates()
    assert len(runpod_rest_server.calls) == 4 and len(sleeps) == 3
    assert str(caught.value) == "GET /templates: RunPod failed (HTTP 500: try again)"


async def test_a_create_is_sent_again_only_when_it_never_left() -> None:
    """Connection refused: RunPod never saw the POST, so sending it again creates nothing twice."""
    from tests.client.latency.helpers import RefusingPort

    refusing = RefusingPort()
    sleeps = Sleeps()
    try:
        async with aiohttp.ClientSession() as session:
            rest = RunPodRest(
                session, SecretStr(API_KEY), base_url=refusing.url + "/v2", sleep=sleeps
            )
            with pytest.raises(RunPodTransportError) as caught:
                await rest.create_template({"name": "t", "image": "x:1"})
    finally:
        refusing.close()
    assert len(sleeps) == 3, "four attempts in all"
    assert caught.value.reason.startswith("cannot connect to 127.0.0.1:")
    assert "connection refused" in str(caught.value) and API_KEY not in str(caught.value)


async def test_check_by_id_reports_a_reduced_endpoint(runpod_rest_server: FakeRunPod) -> None:
    record = runpod_rest_server.add_endpoint(name="ep", workers={"min": 0, "max": 2})
    async with aiohttp.ClientSession() as session:
        result = await check_endpoint(
            session,
            SecretStr(API_KEY),
            endpoint_id=record["id"],
            desired_max=5,
            api_url=runpod_rest_server.api_url,
        )
    assert result.found and result.reduced and not result.scaled_to_zero and not result.ok
    assert result.restore_patch == {"workers": {"min": 0, "max": 5}}
    assert result.restore_url == f"{runpod_rest_server.api_url}/serverless/{record['id']}"
    assert "3 idle days" in result.message


async def test_check_reports_an_endpoint_cut_to_zero_by_name(
    runpod_rest_server: FakeRunPod,
) -> None:
    runpod_rest_server.add_endpoint(name="old", workers={"min": 0, "max": 0})
    async with aiohttp.ClientSession() as session:
        result = await check_endpoint(
            session, SecretStr(API_KEY), name="old", api_url=runpod_rest_server.api_url
        )
    assert result.scaled_to_zero and result.workers_max == 0
    assert result.restore_patch == {"workers": {"min": 0, "max": 3}}


async def test_check_of_an_unknown_id(runpod_rest_server: FakeRunPod) -> None:
    async with aiohttp.ClientSession() as session:
        result = await check_endpoint(
            session, SecretStr(API_KEY), endpoint_id="nope", api_url=runpod_rest_server.api_url
        )
        assert not result.found and "ccrelay deploy" in result.message
        rest = RunPodRest(session, SecretStr(API_KEY), base_url=runpod_rest_server.api_url)
        with pytest.raises(RunPodNotFound):
            await rest.get_endpoint("nope")


def test_one_problem_per_bad_env_value() -> None:
    with pytest.raises(ServerlessConfigError) as caught:
        parse_spec(MINIMAL + "env:\n  A: {nested: 1}\n", {})
    assert str(caught.value) == (
        "serverless.yml: env.A: must be a string, number or boolean; "
        "fix: a mapping of NAME: value; use ${VAR} for secrets"
    )
