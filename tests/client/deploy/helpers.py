"""What the `ccrelay deploy` tests share: a serverless.yml, its variations, and one deploy run
against the fake RunPod REST API."""

from __future__ import annotations

import io
from pathlib import Path

import yaml

from ccrelay.deploy import run_deploy
from tests.fakes.runpod_rest import API_KEY, FakeRunPod

REDIS_URL = "rediss://default:redis-SECRET-pass@redis.example.com:6380/0"
REPO_SPEC = Path(__file__).resolve().parents[3] / "serverless.yml"

SPEC = """\
name: ccrelay-qwen3-coder
image: ghcr.io/example/ccrelay-worker:0.1.0
model: qwen3-coder:30b
gpu:
  types: [ADA_48_PRO, AMPERE_48]
workers:
  min: 0
  max: 3
idle_timeout: 5
scaler:
  type: QUEUE_DELAY
  value: 4
flashboot: FLASHBOOT
execution_timeout: 600
container_disk_gb: 20
network_volume:
  id: vol-existing
env:
  REDIS_URL: ${REDIS_URL}
  OLLAMA_NUM_PARALLEL: 4
"""


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def spec_file(tmp_path: Path, text: str = SPEC, **changes: object) -> Path:
    data = yaml.safe_load(text)
    for dotted, value in changes.items():
        target = data
        *parents, last = dotted.split("__")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    path = tmp_path / "serverless.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def environ(**extra: str) -> dict[str, str]:
    return {"RUNPOD_API_KEY": API_KEY, "REDIS_URL": REDIS_URL, **extra}


async def deploy(
    runpod: FakeRunPod,
    path: Path,
    env: dict[str, str] | None = None,
    *,
    sleeps: Sleeps | None = None,
    **flags: bool,
) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await run_deploy(
        path,
        environ=environ() if env is None else env,
        out=out,
        err=err,
        api_url=runpod.api_url,
        sleep=Sleeps() if sleeps is None else sleeps,
        rng=lambda: 1.0,  # the backoff's ceiling: jitter is tested in test_deploy_parts.py
        **flags,
    )
    return code, out.getvalue(), err.getvalue()


def write_paths(runpod: FakeRunPod) -> list[tuple[str, str]]:
    return [(c.method, c.path) for c in runpod.writes]
