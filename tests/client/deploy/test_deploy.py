"""`ccrelay deploy` against a fake RunPod REST API v2 on loopback: create, no-op, update, dry run,
errors naming the field, --check, retries, and the API key never printed or logged."""

from __future__ import annotations

import argparse
import io
import logging
from pathlib import Path

import pytest
import yaml

from ccrelay.cli.deploy import register
from ccrelay.deploy import run_deploy
from tests.client.deploy.helpers import (
    REDIS_URL,
    REPO_SPEC,
    SPEC,
    Sleeps,
    deploy,
    environ,
    spec_file,
    write_paths,
)
from tests.fakes.runpod_rest import API_KEY, FakeRunPod


async def test_first_deploy_creates_the_template_and_the_endpoint_from_it(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    code, out, err = await deploy(runpod, spec_file(tmp_path))
    assert code == 0, err
    assert write_paths(runpod) == [("POST", "/v2/templates"), ("POST", "/v2/serverless")]
    template = runpod.writes[0].body
    assert template == {
        "name": "ccrelay-qwen3-coder-template",
        "image": "ghcr.io/example/ccrelay-worker:0.1.0",
        "disk": 20,
        "env": {
            "REDIS_URL": REDIS_URL,
            "OLLAMA_NUM_PARALLEL": "4",
            "CCRELAY_MODEL": "qwen3-coder:30b",
        },
        "serverless": True,
        "startSsh": False,  # RunPod's default true would inject PUBLIC_KEY
        "startJupyter": False,  # ... and JUPYTER_PASSWORD
    }
    (template_id,) = runpod.templates
    assert runpod.writes[1].body == {
        "name": "ccrelay-qwen3-coder",
        "type": "QUEUE",
        "templateId": template_id,  # created from it: the template is no orphan
        "gpu": {"pools": ["ADA_48_PRO", "AMPERE_48"], "count": 1},
        "workers": {"min": 0, "max": 3, "idleTimeout": 5},
        "scaling": {"type": "QUEUE_DELAY", "queueDelay": 4},
        "timeout": 600_000,
        "flashboot": "FLASHBOOT",
        "dataCenterIds": ["EU-RO-1"],  # where the existing volume is
        "networkVolumes": ["vol-existing"],
    }
    (endpoint_id,) = runpod.endpoints
    stored = runpod.endpoints[endpoint_id]
    assert stored["image"] == template["image"]
    assert stored["env"]["REDIS_URL"] == REDIS_URL, "secrets are resolved at deploy time"
    assert all(c.authorization == f"Bearer {API_KEY}" for c in runpod.calls)

    assert "endpoint 'ccrelay-qwen3-coder': create" in out
    assert f"POST {runpod.api_url}/templates" in out and f"POST {runpod.api_url}/serverless" in out
    assert '"REDIS_URL": "(value hidden)"' in out
    assert f"deployed endpoint 'ccrelay-qwen3-coder' ({endpoint_id})" in out
    snippet = yaml.safe_load(out.split("for this endpoint:\n", 1)[1])
    assert snippet["backends"]["runpod"] == {
        "type": "runpod",
        "endpoint_id": endpoint_id,
        "api_key": "${RUNPOD_API_KEY}",
        "model": "qwen3-coder:30b",
    }
    assert REDIS_URL not in out + err


async def test_a_second_run_with_no_change_writes_nothing(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    path = spec_file(tmp_path)
    assert (await deploy(runpod, path))[0] == 0
    writes = len(runpod.writes)
    code, out, _ = await deploy(runpod, path)
    assert code == 0
    assert len(runpod.writes) == writes, "no write call on a no-op run"
    assert "no changes" in out
    assert "up to date" in out
    assert f"endpoint_id: {next(iter(runpod.endpoints))}" in out


async def test_idle_timeout_and_scaler_value_changes_are_one_patch_that_applies_both(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    assert (await deploy(runpod, spec_file(tmp_path)))[0] == 0
    before = len(runpod.writes)
    changed = spec_file(tmp_path, idle_timeout=120, scaler__value=2)
    code, out, err = await deploy(runpod, changed)
    assert code == 0, err
    (endpoint_id,) = runpod.endpoints
    assert [(c.method, c.path, c.body) for c in runpod.writes[before:]] == [
        (
            "PATCH",
            f"/v2/serverless/{endpoint_id}",
            {
                "workers": {"min": 0, "max": 3, "idleTimeout": 120},
                "scaling": {"type": "QUEUE_DELAY", "queueDelay": 2},
            },
        )
    ]
    stored = runpod.endpoints[endpoint_id]
    assert stored["workers"]["idleTimeout"] == 120
    assert stored["scaling"] == {"type": "QUEUE_DELAY", "queueDelay": 2}
    assert '"idleTimeout": 5} -> {' in out and '"queueDelay": 2' in out
    assert "template 'ccrelay-qwen3-coder-template'" in out and "up to date" in out
    assert (await deploy(runpod, changed))[0] == 0
    assert len(runpod.writes) == before + 1, "and the next run is a no-op again"


async def test_a_change_patches_only_the_changed_field(runpod: FakeRunPod, tmp_path: Path) -> None:
    assert (await deploy(runpod, spec_file(tmp_path)))[0] == 0
    before = len(runpod.writes)
    code, out, err = await deploy(runpod, spec_file(tmp_path, workers__max=5))
    assert code == 0, err
    (endpoint_id,) = runpod.endpoints
    assert [(c.method, c.path, c.body) for c in runpod.writes[before:]] == [
        (
            "PATCH",
            f"/v2/serverless/{endpoint_id}",
            {"workers": {"min": 0, "max": 5, "idleTimeout": 5}},
        )
    ]
    assert 'workers: {"min": 0, "max": 3, "idleTimeout": 5} -> {"min": 0, "max": 5' in out


async def test_request_count_scaling_sends_no_idle_timeout(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    text = SPEC.replace("idle_timeout: 5\n", "").replace("QUEUE_DELAY", "REQUEST_COUNT")
    code, _, err = await deploy(runpod, spec_file(tmp_path, text, scaler__value=2))
    assert code == 0, err
    endpoint = runpod.writes[-1].body
    assert endpoint["workers"] == {"min": 0, "max": 3}
    assert endpoint["scaling"] == {"type": "REQUEST_COUNT", "requestCount": 2}
    before = len(runpod.writes)
    assert (await deploy(runpod, spec_file(tmp_path, text, scaler__value=2)))[0] == 0
    assert len(runpod.writes) == before


async def test_idle_timeout_with_request_count_is_a_config_error(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    code, _, err = await deploy(runpod, spec_file(tmp_path, scaler__type="REQUEST_COUNT"))
    assert code == 2
    assert "idle_timeout does not apply to a QUEUE endpoint with scaler.type REQUEST_COUNT" in err
    assert runpod.calls == []


async def test_an_endpoint_without_its_template_gets_no_orphan_template(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    assert (await deploy(runpod, spec_file(tmp_path)))[0] == 0
    runpod.templates.clear()  # deleted in the console
    before = len(runpod.writes)
    image = "ghcr.io/example/ccrelay-worker:0.2.0"
    code, out, err = await deploy(runpod, spec_file(tmp_path, image=image))
    assert code == 0, err
    assert "template" not in out.split("endpoint 'ccrelay-qwen3-coder'")[0]
    (endpoint_id,) = runpod.endpoints
    assert [(c.method, c.path, c.body) for c in runpod.writes[before:]] == [
        ("PATCH", f"/v2/serverless/{endpoint_id}", {"image": image})
    ]
    assert runpod.templates == {}


async def test_an_endpoint_of_another_type_is_not_touched(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    runpod.add_endpoint(
        name="ccrelay-qwen3-coder",
        type="LOAD_BALANCER",
        image="x:1",
        scaling={"type": "REQUEST_COUNT", "requestCount": 1},
    )
    code, _, err = await deploy(runpod, spec_file(tmp_path))
    assert code == 1
    assert "is a LOAD_BALANCER endpoint" in err and "rename it" in err
    assert runpod.writes == []


async def test_a_new_image_updates_template_and_endpoint(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    assert (await deploy(runpod, spec_file(tmp_path)))[0] == 0
    before = len(runpod.writes)
    image = "ghcr.io/example/ccrelay-worker:0.2.0"
    assert (await deploy(runpod, spec_file(tmp_path, image=image)))[0] == 0
    assert [(c.method, c.body) for c in runpod.writes[before:]] == [
        ("PATCH", {"image": image}),
        ("PATCH", {"image": image}),
    ]


async def test_a_changed_secret_is_patched_but_never_shown(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    path = spec_file(tmp_path)
    assert (await deploy(runpod, path))[0] == 0
    rotated = "rediss://default:rotated-SECRET-2@redis.example.com:6380/0"
    code, out, err = await deploy(runpod, path, environ(REDIS_URL=rotated))
    assert code == 0, err
    assert "env.REDIS_URL: changed (value hidden)" in out
    patches = [c.body for c in runpod.writes if c.method == "PATCH"]
    assert len(patches) == 2 and all(p["env"]["REDIS_URL"] == rotated for p in patches)
    assert rotated not in out + err and REDIS_URL not in out + err


async def test_dry_run_changes_nothing(runpod: FakeRunPod, tmp_path: Path) -> None:
    code, out, _ = await deploy(runpod, spec_file(tmp_path), dry_run=True)
    assert code == 0
    assert runpod.writes == []
    assert "endpoint 'ccrelay-qwen3-coder': would create" in out
    assert '"templateId": "<template created by this deploy>"' in out
    assert "dry run: nothing was changed (2 write(s) planned)" in out
    assert "endpoint_id: <endpoint id, known after deploy>" in out

    assert (await deploy(runpod, spec_file(tmp_path)))[0] == 0
    before = len(runpod.writes)
    code, out, _ = await deploy(runpod, spec_file(tmp_path, workers__max=9), dry_run=True)
    assert code == 0 and len(runpod.writes) == before
    assert "would update" in out and '"max": 9' in out
    assert "PATCH " in out


async def test_dry_run_without_a_key_prints_the_whole_plan(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    volume = {"name": "ccrelay-models", "size_gb": 60, "data_center": "EU-RO-1"}
    path = spec_file(tmp_path, network_volume=volume)
    code, out, err = await deploy(runpod, path, {"REDIS_URL": REDIS_URL}, dry_run=True)
    assert code == 0, err
    assert err == ""
    assert runpod.calls == [], "nothing is sent without a key"
    assert out.startswith("live state not compared: no RUNPOD_API_KEY")
    for request in ("POST {0}/network-volumes", "POST {0}/templates", "POST {0}/serverless"):
        assert request.format(runpod.api_url) in out
    assert '"REDIS_URL": "(value hidden)"' in out and REDIS_URL not in out
    assert '"networkVolumes": [\n' in out and "<network volume created by this deploy>" in out
    assert "dry run: nothing was changed (3 write(s) planned)" in out


async def test_dry_run_with_runpod_unreachable_says_why_and_prints_the_plan(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    from tests.client.latency.helpers import RefusingPort

    refusing = RefusingPort()
    try:
        out, err = io.StringIO(), io.StringIO()
        code = await run_deploy(
            spec_file(tmp_path),
            environ=environ(),
            out=out,
            err=err,
            api_url=refusing.url + "/v2",
            sleep=Sleeps(),
            dry_run=True,
        )
    finally:
        refusing.close()
    assert code == 0, err.getvalue()
    first = out.getvalue().splitlines()[0]
    assert first.startswith("live state not compared: 127.0.0.1 unreachable: cannot connect")
    assert "connection refused" in first
    assert "endpoint 'ccrelay-qwen3-coder': would create" in out.getvalue()
    assert API_KEY not in out.getvalue() + err.getvalue()


async def test_a_network_volume_is_created_once_and_pins_the_region(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    volume = {"name": "ccrelay-models-eu", "size_gb": 100, "data_center": "EU-RO-1"}
    path = spec_file(tmp_path, network_volume=volume)
    code, _, err = await deploy(runpod, path)
    assert code == 0, err
    assert write_paths(runpod) == [
        ("POST", "/v2/network-volumes"),
        ("POST", "/v2/templates"),
        ("POST", "/v2/serverless"),
    ]
    assert runpod.writes[0].body == {
        "name": "ccrelay-models-eu",
        "size": 100,
        "dataCenter": "EU-RO-1",
    }
    volume_id = next(v for v in runpod.volumes if v != "vol-existing")
    endpoint = runpod.writes[2].body
    assert endpoint["networkVolumes"] == [volume_id]
    assert endpoint["dataCenterIds"] == ["EU-RO-1"]
    before = len(runpod.writes)
    assert (await deploy(runpod, path))[0] == 0
    assert len(runpod.writes) == before, "the volume is found by name the second time"


async def test_an_unknown_volume_id_is_named(runpod: FakeRunPod, tmp_path: Path) -> None:
    code, _, err = await deploy(runpod, spec_file(tmp_path, network_volume={"id": "vol-nope"}))
    assert code == 1
    assert "network_volume.id" in err and "'vol-nope'" in err
    assert runpod.writes == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"workers__max": 0},
            "workers.max: Input should be greater than or equal to 1; fix: at least 1",
        ),
        ({"workers__min": 4}, "workers: min must not be greater than max"),
        (
            {"scaler__kind": "fast"},
            "scaler.kind: unknown field; fix: remove it or fix its spelling; allowed: type, value",
        ),
        (
            {"flashboot": "ON"},
            "flashboot: Input should be 'OFF', 'FLASHBOOT' or 'PRIORITY_FLASHBOOT'",
        ),
        ({"image": "ghcr.io/example/ccrelay-worker"}, "image: has no tag"),
        (
            {"network_volume": {"name": "x"}},
            "network_volume: needs id, or all of name, size_gb and data_center",
        ),
        ({"gpu": {"types": []}}, "gpu.types: List should have at least 1 item"),
        ({"scaler__value": 0.2}, "scaler.value: Input should be greater than or equal to 0.5"),
    ],
)
async def test_a_bad_file_names_the_file_the_field_and_the_fix(
    runpod: FakeRunPod, tmp_path: Path, changes: dict[str, object], expected: str
) -> None:
    path = spec_file(tmp_path, **changes)
    code, out, err = await deploy(runpod, path)
    assert code == 2
    assert err.startswith(f"ccrelay: config error: {path}: ")
    assert expected in err
    assert runpod.calls == [], "nothing is sent for an invalid file"
    assert REDIS_URL not in out + err


async def test_a_missing_secret_variable_names_the_field(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    code, _, err = await deploy(runpod, spec_file(tmp_path), {"RUNPOD_API_KEY": API_KEY})
    assert code == 2
    assert "env.REDIS_URL: environment variable REDIS_URL is not set; fix: export REDIS_URL=" in err


async def test_a_missing_api_key_is_reported(runpod: FakeRunPod, tmp_path: Path) -> None:
    code, _, err = await deploy(runpod, spec_file(tmp_path), {"REDIS_URL": REDIS_URL})
    assert code == 2 and err.startswith("ccrelay: RUNPOD_API_KEY is not set; fix: ")
    assert runpod.calls == []


async def test_runpod_failures_are_reported_as_every_command_reports_errors(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    code, _, err = await deploy(runpod, spec_file(tmp_path, network_volume={"id": "vol-nope"}))
    assert code == 1
    assert err.startswith("ccrelay: error: ") and err.count("\n") == 1
    assert "error: error" not in err


PLACEHOLDER_WARNING = "ccrelay: warning: image ghcr.io/you/ccrelay-worker:0.1.0 is the example's"


async def test_deploying_the_placeholder_image_warns_before_the_plan(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    text = SPEC.replace("ghcr.io/example/", "ghcr.io/${CCRELAY_IMAGE_OWNER:-you}/")
    code, out, err = await deploy(runpod, spec_file(tmp_path, text))
    assert code == 0, err
    assert err.startswith(PLACEHOLDER_WARNING)
    assert "export CCRELAY_IMAGE_OWNER=" in err and "docs/deploy.md" in err
    assert "endpoint 'ccrelay-qwen3-coder': create" in out

    code, out, err = await deploy(
        runpod, spec_file(tmp_path, text), environ(CCRELAY_IMAGE_OWNER="acme")
    )
    assert code == 0 and err == "", "an image of your own: no warning"
    assert "ghcr.io/acme/ccrelay-worker:0.1.0" in out


async def test_a_dry_run_of_the_repository_s_serverless_yml_warns_about_its_placeholder(
    runpod: FakeRunPod,
) -> None:
    """What someone who follows the steps without CCRELAY_IMAGE_OWNER sees, key or not."""
    for env in ({}, environ()):
        code, out, err = await deploy(runpod, REPO_SPEC, env, dry_run=True)
        assert code == 0, err
        assert err.startswith(PLACEHOLDER_WARNING), err
        assert '"image": "ghcr.io/you/ccrelay-worker:0.1.0"' in out
    assert runpod.writes == []


async def test_yaml_syntax_errors_name_the_line(runpod: FakeRunPod, tmp_path: Path) -> None:
    path = tmp_path / "serverless.yml"
    path.write_text("name: x\nimage: [unclosed\n")
    code, _, err = await deploy(runpod, path)
    assert code == 2 and "line " in err and "not valid YAML" in err


async def test_transient_errors_are_retried_with_backoff(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    runpod.fail_next = [503, 429]  # the first GET fails twice (429 says Retry-After: 0)
    sleeps = Sleeps()
    code, _, err = await deploy(runpod, spec_file(tmp_path), sleeps=sleeps)
    assert code == 0, err
    gets = [c.path for c in runpod.calls if c.method == "GET"]
    assert gets[:3] == ["/v2/serverless"] * 3
    assert sleeps == [0.5, 0.0]


async def test_a_failed_create_is_not_sent_twice(runpod: FakeRunPod, tmp_path: Path) -> None:
    runpod.fail_writes = 502
    code, _, err = await deploy(runpod, spec_file(tmp_path))
    assert code == 1
    assert "POST /templates: RunPod failed (HTTP 502" in err
    assert len([c for c in runpod.calls if c.method == "POST"]) == 1
    runpod.fail_writes = None
    assert (await deploy(runpod, spec_file(tmp_path)))[0] == 0, "rerunning deploy recovers"


async def test_check_reports_an_endpoint_cut_to_zero_and_how_to_restore_it(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    record = runpod.add_endpoint(name="ccrelay-qwen3-coder", workers={"min": 0, "max": 0})
    code, out, _ = await deploy(runpod, spec_file(tmp_path), check=True)
    assert code == 1
    assert "has max workers 0" in out and "7 days without requests" in out
    assert "ccrelay deploy" in out
    assert (
        f'PATCH {runpod.api_url}/serverless/{record["id"]} {{"workers":{{"min":0,"max":3}}}}' in out
    )
    assert runpod.writes == [], "--check never writes"

    # deploying restores it
    assert (await deploy(runpod, spec_file(tmp_path)))[0] == 0
    assert runpod.endpoints[record["id"]]["workers"] == {"min": 0, "max": 3, "idleTimeout": 5}
    code, out, _ = await deploy(runpod, spec_file(tmp_path), check=True)
    assert code == 0 and "it can take jobs" in out


async def test_check_reports_a_missing_endpoint(runpod: FakeRunPod, tmp_path: Path) -> None:
    code, out, _ = await deploy(runpod, spec_file(tmp_path), check=True)
    assert code == 1 and "no serverless endpoint with name 'ccrelay-qwen3-coder'" in out


async def test_a_rejected_key_is_explained_without_echoing_it(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    wrong = "rpa_WRONG_key_0000000000000000"
    code, out, err = await deploy(runpod, spec_file(tmp_path), environ(RUNPOD_API_KEY=wrong))
    assert code == 1
    assert "refused the API key (HTTP 401" in err and "RUNPOD_API_KEY" in err
    assert wrong not in out + err


def test_the_api_key_never_appears_in_any_output_or_log(
    runpod: FakeRunPod,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through the real sub-command: create, no-op, update, dry run, check, retried errors."""
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    parser = argparse.ArgumentParser(prog="ccrelay")
    register(parser.add_subparsers())
    path = spec_file(tmp_path)
    runs = [
        [str(path)],
        [str(path)],
        [str(spec_file(tmp_path, workers__max=4))],
        [str(path), "--dry-run"],
        [str(path), "--check"],
    ]
    codes = []
    with caplog.at_level(logging.DEBUG):
        for number, extra in enumerate(runs):
            runpod.fail_next = [503 if number == 0 else 429]  # 429 says Retry-After: 0
            args = parser.parse_args(["deploy", *extra, "--api-url", runpod.api_url])
            codes.append(args.run(args))
    assert codes == [0, 0, 0, 0, 0]
    captured = capsys.readouterr()
    everything = captured.out + captured.err + caplog.text
    assert "ccrelay-qwen3-coder" in everything
    assert API_KEY not in everything
    assert REDIS_URL not in everything
    assert all(c.authorization == f"Bearer {API_KEY}" for c in runpod.calls)


def test_the_repositorys_serverless_yml_is_valid() -> None:
    from ccrelay.deploy import load_spec

    deploy_spec = load_spec(Path(__file__).resolve().parents[3] / "serverless.yml", {})
    spec = deploy_spec.spec
    assert spec.workers.min == 0 and spec.model == "qwen3-coder:30b"
    assert spec.network_volume is not None and spec.network_volume.size_gb
    assert deploy_spec.secret_keys == {"REDIS_URL"}
    assert deploy_spec.env["CCRELAY_MODEL"] == "qwen3-coder:30b"
