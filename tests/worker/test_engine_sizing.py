"""Engine sizing (docs/engine-sizing.md): the table's arithmetic, which row a GPU gets, that set
variables win, and that the window the handler reports is the one Ollama really loaded."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import pytest

from ccrelay_worker.boot import main
from ccrelay_worker.engine_sizing import (
    TABLE,
    WEIGHTS_GIB,
    detect_gpu_memory_gib,
    kv_cache_gib,
    resolve_sizing,
    row_for,
)
from ccrelay_worker.errors import WorkerConfigError
from ccrelay_worker.settings import WorkerSettings
from tests.fakes.nvidia_smi import install_nvidia_smi
from tests.worker.worker_process import REPO, run_worker, worker_env

GIB = 2**30
RTX_4090, L40S, H100, H200 = 24564, 46068, 81559, 143771  # MiB, as nvidia-smi reports them


def test_the_kv_cache_per_token_follows_the_model_s_config() -> None:
    # 2 (K, V) x 48 layers x 4 KV heads x 128 head dim
    assert kv_cache_gib(1, 1, "f16") * GIB == 2 * 48 * 4 * 128 * 2 == 96 * 1024
    assert kv_cache_gib(1, 1, "q8_0") * GIB == 2 * 48 * 4 * 128 * 34 / 32 == 51 * 1024
    assert kv_cache_gib(262144, 1, "f16") == 24.0
    assert kv_cache_gib(65536, 2, "q8_0") == kv_cache_gib(131072, 1, "q8_0") == 6.375
    assert 17 < WEIGHTS_GIB < 18  # 19 GB


@pytest.mark.parametrize(
    ("gpu", "mib"), [("24 GB", RTX_4090), ("48 GB", L40S), ("80 GB", H100), ("141 GB", H200)]
)
def test_each_row_fits_the_card_it_is_for(gpu: str, mib: int) -> None:
    row = row_for(mib / 1024)
    assert row.gpu == gpu
    assert row.total_gib < mib / 1024, f"{row} needs {row.total_gib:.1f} GiB"


def test_the_documented_table_is_the_one_the_worker_uses() -> None:
    text = (REPO / "docs" / "engine-sizing.md").read_text()
    table = text.split("## The table", 1)[1].split("\n\n", 2)[1]
    rows = [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in table.splitlines()[2:]
        if line.startswith("|")
    ]
    assert [
        (r[0], float(r[1].split()[0]), int(r[2]), int(r[3]), r[4], r[5], r[6]) for r in rows
    ] == [
        (
            row.gpu,
            row.min_gib,
            row.context_length,
            row.parallel,
            row.kv_cache_type,
            "on" if row.flash_attention else "off",
            f"{row.kv_gib:.1f} GiB",
        )
        for row in TABLE
    ]


@pytest.mark.parametrize(
    ("mib", "gpu", "context", "parallel", "kv"),
    [
        ([RTX_4090], "24 GB", "65536", "1", "q8_0"),
        ([L40S], "48 GB", "131072", "3", "q8_0"),
        ([H100], "80 GB", "131072", "4", "f16"),
        ([H200], "141 GB", "262144", "4", "f16"),
        ([RTX_4090, RTX_4090], "48 GB", "131072", "3", "q8_0"),  # summed, as Ollama does
        ([16303], "under 24 GB", "32768", "1", "q8_0"),
    ],
)
def test_nvidia_smi_picks_the_row(
    tmp_path: Path, mib: list[int], gpu: str, context: str, parallel: str, kv: str
) -> None:
    path = str(install_nvidia_smi(tmp_path / "bin", mib))
    sizing = resolve_sizing({"PATH": path})
    assert sizing.row is not None and sizing.row.gpu == gpu
    assert sizing.found_by == "nvidia-smi" and sizing.gpu_gib == sum(mib) / 1024
    assert sizing.environment() == {
        "OLLAMA_CONTEXT_LENGTH": context,
        "OLLAMA_NUM_PARALLEL": parallel,
        "OLLAMA_KV_CACHE_TYPE": kv,
        "OLLAMA_FLASH_ATTENTION": "1",
    }


def test_without_a_gpu_the_smallest_row_is_taken_and_said(tmp_path: Path, caplog) -> None:
    broken = str(install_nvidia_smi(tmp_path / "bin", [H100], exit_code=9))
    assert detect_gpu_memory_gib(broken) is None
    assert "nvidia-smi listed no GPU memory" in caplog.text
    assert detect_gpu_memory_gib(str(tmp_path / "empty")) is None
    sizing = resolve_sizing({"PATH": broken})
    assert sizing.row == TABLE[0] and sizing.gpu_gib is None
    assert "no GPU memory found (set CCRELAY_GPU_MEMORY_GB)" in sizing.describe()


def test_the_stated_gpu_memory_wins_over_nvidia_smi(tmp_path: Path) -> None:
    path = str(install_nvidia_smi(tmp_path / "bin", [RTX_4090]))
    sizing = resolve_sizing({"PATH": path, "CCRELAY_GPU_MEMORY_GB": "80"})
    assert sizing.row is not None and sizing.row.gpu == "80 GB"
    assert sizing.found_by == "CCRELAY_GPU_MEMORY_GB"


def test_set_variables_win_and_reach_ollama_as_written(tmp_path: Path) -> None:
    environ = {"CCRELAY_GPU_MEMORY_GB": "80", "OLLAMA_NUM_PARALLEL": "2", "OLLAMA_MODELS": "/m"}
    settings = WorkerSettings.from_env(environ)
    engine = settings.engine_environment(environ)
    assert engine["OLLAMA_NUM_PARALLEL"] == "2"
    assert engine["OLLAMA_CONTEXT_LENGTH"] == "131072" and engine["OLLAMA_KV_CACHE_TYPE"] == "f16"
    assert settings.sizing.explicit == ("OLLAMA_NUM_PARALLEL",)
    assert "set by the environment: OLLAMA_NUM_PARALLEL" in settings.sizing.describe()


def test_another_model_gets_only_what_is_set(tmp_path: Path) -> None:
    environ = {"CCRELAY_GPU_MEMORY_GB": "80", "CCRELAY_MODEL": "llama3:70b"}
    settings = WorkerSettings.from_env({**environ, "OLLAMA_KV_CACHE_TYPE": "q8_0"})
    assert settings.sizing.row is None
    assert settings.sizing.environment() == {"OLLAMA_KV_CACHE_TYPE": "q8_0"}
    assert "OLLAMA_CONTEXT_LENGTH" not in settings.engine_environment({})


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("OLLAMA_KV_CACHE_TYPE", "q8", "is not a cache type Ollama takes"),
        ("OLLAMA_FLASH_ATTENTION", "yes", "is not a boolean"),
        ("CCRELAY_GPU_MEMORY_GB", "eighty", "is not a number"),
        ("CCRELAY_GPU_MEMORY_GB", "0", "must be more than 0"),
    ],
)
def test_bad_sizing_values_are_named(variable: str, value: str, expected: str) -> None:
    with pytest.raises(WorkerConfigError, match=expected) as info:
        resolve_sizing({variable: value})
    assert variable in str(info.value)


def test_a_choice_too_big_for_the_gpu_is_a_warning() -> None:
    sizing = resolve_sizing(
        {
            "CCRELAY_GPU_MEMORY_GB": "24",
            "OLLAMA_CONTEXT_LENGTH": "262144",
            "OLLAMA_KV_CACHE_TYPE": "q8_0",
            "OLLAMA_FLASH_ATTENTION": "0",
        }
    )
    notes = " ".join(sizing.warnings())
    assert "needs flash attention, which is off" in notes
    assert re.search(r"need about \d+\.\d GiB but the GPU has 24\.0", notes)


def test_the_boot_gives_ollama_the_row_and_the_handler_the_loaded_window(tmp_path: Path) -> None:
    """Through the real subprocess path: the fake engine logs the settings it got (as ollama
    serve does); the handler is told the context /api/ps reports, here clamped by Ollama to
    the model's trained 262144."""
    path = install_nvidia_smi(tmp_path / "bin", [H200])
    env = worker_env(tmp_path, PATH=f"{path}:{worker_env(tmp_path)['PATH']}")
    code, err = run_worker(env, "--prepare")
    assert code == 0, err
    assert "row 141 GB" in err and "OLLAMA_NUM_PARALLEL=4" in err
    assert "OLLAMA_CONTEXT_LENGTH:262144" in err and "OLLAMA_KV_CACHE_TYPE:f16" in err
    assert "engine window: 262144 tokens per request, 4 slot(s)" in err

    seen: dict[str, str] = {}

    def serve(_settings: WorkerSettings, handler_env: Mapping[str, str]) -> None:
        seen.update(handler_env)

    env = {**env, "OLLAMA_CONTEXT_LENGTH": "300000"}  # more than the model was trained for
    assert main([], env, serve=serve) == 0
    assert seen["OLLAMA_CONTEXT_LENGTH"] == "262144"  # what Ollama really loaded
    assert seen["OLLAMA_NUM_PARALLEL"] == "4"
