"""The Dockerfile, checked by reading it (no Docker engine here): the properties the worker needs."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fakes.ollama import linux_asset

REPO = Path(__file__).resolve().parents[2]
CODE_DIRS = ("worker", "handler")
CLIENT_DIRS = ("client", "config")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return result


def index_of(predicate: object) -> int:
    for number, item in enumerate(instructions()):
        if predicate(item):  # type: ignore[operator]
            return number
    raise AssertionError("no such instruction")


def test_the_entry_point_is_the_worker_boot_in_exec_form() -> None:
    entrypoints = [args for kind, args in instructions() if kind == "ENTRYPOINT"]
    assert len(entrypoints) == 1
    assert json.loads(entrypoints[0]) == ["python", "-m", "ccrelay_worker"]
    assert (REPO / "worker" / "ccrelay_worker" / "__main__.py").is_file()


def test_there_is_a_healthcheck_reaching_health_in_http_mode() -> None:
    checks = [args for kind, args in instructions() if kind == "HEALTHCHECK"]
    assert len(checks) == 1
    assert re.search(r"CMD \[\"python\", \"-m\", \"ccrelay_worker\.healthcheck\"\]", checks[0])
    assert "--start-period=" in checks[0], "the first pull takes long: give it a start period"
    source = (REPO / "worker" / "ccrelay_worker" / "healthcheck.py").read_text()
    assert "/health" in source and "/api/version" in source


def test_the_model_is_not_baked_into_the_image() -> None:
    for kind, args in instructions():
        if kind == "RUN":
            assert not re.search(r"ollama\s+(pull|run|serve|create)", args), args
            assert "/api/pull" not in args
            assert "qwen" not in args.lower()
        if kind in ("COPY", "ADD"):
            assert ".gguf" not in args and "blobs" not in args and "manifests" not in args


def test_ollama_is_installed_from_a_pinned_release() -> None:
    kinds = instructions()
    assert any(k == "ARG" and re.match(r"OLLAMA_VERSION=\d+\.\d+\.\d+$", a) for k, a in kinds)
    assert any(
        k == "RUN" and "github.com/ollama/ollama/releases/download/v${OLLAMA_VERSION}" in a
        for k, a in kinds
    )


def test_dependencies_are_installed_before_the_code_is_copied() -> None:
    kinds = instructions()
    copy_pyproject = index_of(lambda i: i[0] == "COPY" and "pyproject.toml" in i[1])
    install_deps = index_of(lambda i: i[0] == "RUN" and "pip install -r" in i[1])
    first_code_copy = index_of(
        lambda i: i[0] == "COPY" and any(re.search(rf"\b{d}\b", i[1]) for d in CODE_DIRS)
    )
    assert copy_pyproject < install_deps < first_code_copy
    copied = " ".join(a for k, a in kinds[first_code_copy:] if k == "COPY")
    for directory in CODE_DIRS:
        assert directory in copied, f"{directory}/ is not copied into the image"
    env = " ".join(a for k, a in kinds if k == "ENV")
    assert "PYTHONPATH=/app/handler:/app/worker" in env


def test_the_image_carries_no_client_code() -> None:
    for kind, args in instructions():
        if kind in ("COPY", "ADD"):
            for directory in CLIENT_DIRS:
                assert not re.search(rf"(^|\s){directory}\b", args), args
            assert not re.match(r"\.\s", args), "COPY . would bring the client in"


def test_the_image_installs_the_worker_extra_only() -> None:
    installs = [a for k, a in instructions() if k == "RUN" and "pip install" in a]
    assert installs and all("optional-dependencies" in a and "worker" in a for a in installs)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OLLAMA_MODELS", "/runpod-volume/ollama"),
        ("OLLAMA_HOST", "127.0.0.1:11434"),
        ("OLLAMA_NOPRUNE", "1"),
        ("OLLAMA_KEEP_ALIVE", None),
        ("CCRELAY_MODEL", "qwen3-coder:30b"),
    ],
)
def test_environment_defaults(name: str, value: str | None) -> None:
    env_lines = " ".join(a for k, a in instructions() if k == "ENV")
    match = re.search(rf"\b{name}=(\S+)", env_lines)
    assert match, f"ENV {name} is not set"
    if value is not None:
        assert match.group(1) == value


@pytest.mark.parametrize(
    "name",
    [
        "OLLAMA_CONTEXT_LENGTH",
        "OLLAMA_NUM_PARALLEL",
        "OLLAMA_KV_CACHE_TYPE",
        "OLLAMA_FLASH_ATTENTION",
    ],
)
def test_the_engine_sizing_is_left_to_the_worker(name: str) -> None:
    """An ENV here would count as the user's choice and pin every GPU to one row of
    docs/engine-sizing.md."""
    env_lines = " ".join(a for k, a in instructions() if k == "ENV")
    assert not re.search(rf"\b{name}=", env_lines)


def test_the_build_context_leaves_out_what_the_image_does_not_need() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    for entry in (".git", ".venv", "tests", "secrets.ci.json"):
        assert entry in ignored


def _arg(name: str) -> str:
    values = [a.split("=", 1)[1] for k, a in instructions() if k == "ARG" and a.startswith(name)]
    assert len(values) == 1, f"ARG {name} is not set once"
    return values[0]


def _ollama_step() -> str:
    steps = [a for k, a in instructions() if k == "RUN" and "github.com/ollama/ollama" in a]
    assert len(steps) == 1
    return steps[0]


@pytest.mark.parametrize("arch", ["amd64", "arm64"])
def test_the_ollama_asset_is_the_one_its_release_publishes(arch: str) -> None:
    """Ollama's Linux assets are .tar.zst since v0.14.0 and .tgz before (its release.yaml):
    the URL the image fetches must name the asset the pinned release really has."""
    version = _arg("OLLAMA_VERSION")
    step = _ollama_step().replace("${TARGETARCH}", arch).replace("${OLLAMA_VERSION}", version)
    assert "zstd" in " ".join(a for k, a in instructions() if k == "RUN" and "apt-get" in a)
    asset = re.search(r'asset="([^"]+)"', step)
    assert asset and asset.group(1) == linux_asset(version, arch)
    assert f"releases/download/v{version}" in step


def _fake_release(directory: Path, asset: str, *, digest: str | None = None) -> None:
    """A release directory like Ollama's: the zstd tarball and sha256sum.txt."""
    tree = directory / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "lib" / "ollama").mkdir(parents=True)
    for path in (tree / "bin" / "ollama", tree / "lib" / "ollama" / "llama-server"):
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    tarball = directory / asset
    subprocess.run(f"tar -cf - -C {tree} bin lib | zstd -q -o {tarball}", shell=True, check=True)
    digest = digest or hashlib.sha256(tarball.read_bytes()).hexdigest()
    other = "0" * 64
    (directory / "sha256sum.txt").write_text(
        f"{other}  ./ollama-darwin.tgz\n{digest}  ./{asset}\n{other}  ./{asset[:-8]}-rocm.tar.zst\n"
    )


def _run_ollama_step(tmp_path: Path, release: Path) -> subprocess.CompletedProcess[str]:
    """The Dockerfile's Ollama step under sh, with curl answering from ``release`` and /usr
    moved under ``tmp_path`` (everything else as written)."""
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    curl = fake_bin / "curl"
    curl.write_text(
        "#!/bin/sh\n"
        'out=""; url=""\n'
        'while [ $# -gt 0 ]; do case "$1" in -o) out="$2"; shift 2;; -*) shift;; '
        '*) url="$1"; shift;; esac; done\n'
        f'src="{release}/$(basename "$url")"\n'
        '[ -f "$src" ] || exit 22\n'
        'cp "$src" "$out"\n'
    )
    curl.chmod(0o755)
    prefix = tmp_path / "usr"
    prefix.mkdir()
    script = (
        _ollama_step().replace("cd /tmp", f"cd {tmp_path / 'work'}").replace("/usr", str(prefix))
    )
    (tmp_path / "work").mkdir()
    env = {
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
        "OLLAMA_VERSION": _arg("OLLAMA_VERSION"),
        "TARGETARCH": "amd64",
    }
    return subprocess.run(["sh", "-ec", script], env=env, capture_output=True, text=True)


@pytest.mark.skipif(shutil.which("zstd") is None, reason="needs the zstd command")
def test_the_ollama_step_checks_the_digest_and_unpacks_the_tarball(tmp_path: Path) -> None:
    asset = linux_asset(_arg("OLLAMA_VERSION"), "amd64")
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.mkdir()
    _fake_release(good, asset)
    (tmp_path / "a").mkdir()
    result = _run_ollama_step(tmp_path / "a", good)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a" / "usr" / "bin" / "ollama").is_file()
    assert (tmp_path / "a" / "usr" / "lib" / "ollama" / "llama-server").is_file()
    assert not list((tmp_path / "a" / "work").iterdir()), "the download is removed"

    bad.mkdir()
    _fake_release(bad, asset, digest="f" * 64)
    (tmp_path / "b").mkdir()
    refused = _run_ollama_step(tmp_path / "b", bad)
    assert refused.returncode != 0
    assert not (tmp_path / "b" / "usr" / "bin" / "ollama").exists()
