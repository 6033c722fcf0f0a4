"""Smaller parts of the deployment: serverless.yml parsing rules, the REST client's tolerance,
and check_endpoint's verdicts (against the fake RunPod API)."""

from __future__ import annotations

import aiohttp
import pytest
from pydantic import SecretStr

from ccrelay.deploy import check_endpoint, parse_spec
from ccrelay.deploy.errors import RunPodNotFound, ServerlessConfigError
from ccrelay.deploy.rest import RunPodRest, _as_list, scrub
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


def test_scrub_hides_every_secret() -> None:
    assert (
        scrub("key=abcd1234 and pw=secretpw", ["abcd1234", "secretpw", ""]) == "key=*** and pw=***"
    )


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
