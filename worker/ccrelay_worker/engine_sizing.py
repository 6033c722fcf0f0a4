"""How big a context, how many parallel slots and which KV cache the worker gives Ollama.

The table (docs/engine-sizing.md shows the arithmetic) is for Qwen3-Coder-30B-A3B at Q4_K_M,
about 19 GB of weights. Its KV cache per token is 2 (K and V) x 48 layers x 4 KV heads x 128
(head dim) elements (Qwen/Qwen3-Coder-30B-A3B-Instruct ``config.json``: num_hidden_layers,
num_key_value_heads, head_dim), at 2 bytes each in f16 or 34/32 bytes in q8_0 (ggml's q8_0 block:
32 values in 34 bytes). Ollama gives every parallel slot its own context (llama-server runs with
``-c <num_ctx x slots> -np <slots>``, ollama/ollama ``llm/llama_server.go``), so the cache is
context x slots x that per-token size.

The row follows the GPU memory: ``CCRELAY_GPU_MEMORY_GB`` when set, else the total that
``nvidia-smi`` reports for all GPUs (as Ollama sums them), else the smallest row. An explicit
``OLLAMA_CONTEXT_LENGTH``, ``OLLAMA_NUM_PARALLEL``, ``OLLAMA_KV_CACHE_TYPE`` or
``OLLAMA_FLASH_ATTENTION`` wins over its row's value and reaches Ollama as written. For another
model the table does not apply: only what the environment sets reaches Ollama.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from ccrelay_worker.errors import WorkerConfigError

__all__ = [
    "TABLE",
    "EngineSizing",
    "SizingRow",
    "detect_gpu_memory_gib",
    "kv_cache_gib",
    "resolve_sizing",
    "row_for",
]

log = logging.getLogger("ccrelay.worker")

KvCacheType = Literal["f16", "q8_0", "q4_0"]

SIZED_MODEL = "qwen3-coder:30b"
LAYERS = 48
KV_HEADS = 4
HEAD_DIM = 128
BYTES_PER_ELEMENT: dict[str, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}
WEIGHTS_GIB = 19e9 / 2**30  # the model file, qwen3-coder:30b (Q4_K_M)
OVERHEAD_GIB = 2.5  # CUDA context, llama.cpp's compute buffers, Ollama's reserve
GIB = 2**30

_SIZING_VARS = (
    "OLLAMA_CONTEXT_LENGTH",
    "OLLAMA_NUM_PARALLEL",
    "OLLAMA_KV_CACHE_TYPE",
    "OLLAMA_FLASH_ATTENTION",
)
# Go's strconv.ParseBool, which Ollama's envconfig uses
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def kv_cache_gib(context: int, slots: int, kv_cache_type: str) -> float:
    """GiB of KV cache for ``slots`` contexts of ``context`` tokens."""
    per_token = 2 * LAYERS * KV_HEADS * HEAD_DIM * BYTES_PER_ELEMENT[kv_cache_type]
    return context * slots * per_token / GIB


@dataclass(frozen=True)
class SizingRow:
    """One row of the table: a GPU size, and what the worker gives Ollama on it."""

    gpu: str
    min_gib: float  # the least total GPU memory (GiB, as nvidia-smi counts) this row needs
    context_length: int  # per slot: the window each request gets
    parallel: int
    kv_cache_type: KvCacheType
    flash_attention: bool = True  # llama.cpp needs it for a quantized V cache

    @property
    def kv_gib(self) -> float:
        return kv_cache_gib(self.context_length, self.parallel, self.kv_cache_type)

    @property
    def total_gib(self) -> float:
        return WEIGHTS_GIB + OVERHEAD_GIB + self.kv_gib


TABLE: tuple[SizingRow, ...] = (
    SizingRow("under 24 GB", 0.0, 32768, 1, "q8_0"),
    SizingRow("24 GB", 22.0, 65536, 1, "q8_0"),
    SizingRow("48 GB", 44.0, 131072, 3, "q8_0"),
    SizingRow("80 GB", 75.0, 131072, 4, "f16"),
    SizingRow("141 GB", 130.0, 262144, 4, "f16"),
)


def row_for(gpu_gib: float | None) -> SizingRow:
    """The largest row that fits ``gpu_gib`` (the smallest when it is unknown)."""
    fitting = [row for row in TABLE if gpu_gib is not None and gpu_gib >= row.min_gib]
    return fitting[-1] if fitting else TABLE[0]


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def detect_gpu_memory_gib(path: str, run: Runner = subprocess.run) -> float | None:
    """Total memory of every GPU ``nvidia-smi`` (looked up on ``path``) lists, or None."""
    binary = shutil.which("nvidia-smi", path=path)
    if binary is None:
        return None
    try:
        result = run(
            [binary, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("nvidia-smi did not answer (%s); sizing Ollama for the smallest GPU", exc)
        return None
    try:
        mib = [float(line) for line in result.stdout.split() if line.strip()]
    except ValueError:
        mib = []
    if result.returncode != 0 or not mib:
        log.warning("nvidia-smi listed no GPU memory; sizing Ollama for the smallest GPU")
        return None
    return sum(mib) / 1024


@dataclass(frozen=True)
class EngineSizing:
    """The row chosen, and what the worker sets (an explicit value kept as written)."""

    row: SizingRow | None  # None: the table is not for this model
    gpu_gib: float | None
    found_by: str  # "CCRELAY_GPU_MEMORY_GB", "nvidia-smi" or "nothing"
    values: tuple[tuple[str, str], ...]  # (OLLAMA_* name, value) the worker sets
    explicit: tuple[str, ...]  # the names the environment set

    def environment(self) -> dict[str, str]:
        return dict(self.values)

    @property
    def context_length(self) -> int | None:
        """The window each request gets as configured (Ollama may clamp it to the model's)."""
        return _positive(self.environment().get("OLLAMA_CONTEXT_LENGTH", ""))

    @property
    def parallel(self) -> int:
        return _positive(self.environment().get("OLLAMA_NUM_PARALLEL", "")) or 1

    def describe(self) -> str:
        found = (
            f"{self.gpu_gib:.1f} GiB of GPU memory from {self.found_by}"
            if self.gpu_gib is not None
            else "no GPU memory found (set CCRELAY_GPU_MEMORY_GB)"
        )
        where = f"row {self.row.gpu}" if self.row else f"no row (the table is for {SIZED_MODEL})"
        settings = ", ".join(f"{name}={value}" for name, value in self.values) or "Ollama's own"
        text = f"engine sizing: {found}, {where}: {settings}"
        if self.explicit:
            text += f" (set by the environment: {', '.join(self.explicit)})"
        return text

    def warnings(self) -> list[str]:
        """What an explicit choice costs, in plain words."""
        env = self.environment()
        notes = []
        kv = env.get("OLLAMA_KV_CACHE_TYPE", "f16")
        if kv != "f16" and env.get("OLLAMA_FLASH_ATTENTION") in _FALSE:
            notes.append(
                f"OLLAMA_KV_CACHE_TYPE={kv} needs flash attention, which is off: Ollama keeps "
                "an f16 cache, twice the memory"
            )
        if self.row is None or self.context_length is None or self.gpu_gib is None:
            return notes
        need = WEIGHTS_GIB + OVERHEAD_GIB + kv_cache_gib(self.context_length, self.parallel, kv)
        if need > self.gpu_gib:
            notes.append(
                f"{self.context_length} tokens x {self.parallel} slot(s) with a {kv} KV cache "
                f"need about {need:.1f} GiB but the GPU has {self.gpu_gib:.1f}: Ollama will "
                "run part of the model on the CPU, much slower (docs/engine-sizing.md)"
            )
        return notes


def resolve_sizing(
    environ: Mapping[str, str],
    model: str = SIZED_MODEL,
    detect: Callable[[str], float | None] = detect_gpu_memory_gib,
) -> EngineSizing:
    """The sizing of ``model`` in this environment (a bad KV cache type or flag, or a GPU memory
    that is not a number, raises WorkerConfigError)."""
    stated = (environ.get("CCRELAY_GPU_MEMORY_GB") or "").strip()
    if stated:
        try:
            stated_gib = float(stated)
        except ValueError:
            raise WorkerConfigError(
                "CCRELAY_GPU_MEMORY_GB", "is not a number", "e.g. 80 for an 80 GB GPU"
            ) from None
        if stated_gib <= 0:
            raise WorkerConfigError(
                "CCRELAY_GPU_MEMORY_GB", "must be more than 0", "e.g. 80 for an 80 GB GPU"
            )
        gpu_gib: float | None = stated_gib
        found_by = "CCRELAY_GPU_MEMORY_GB"
    else:  # the PATH of this environment only: no PATH, no nvidia-smi
        gpu_gib, found_by = detect(environ.get("PATH", "")), "nvidia-smi"
    row = row_for(gpu_gib) if model == SIZED_MODEL else None
    defaults = {}
    if row is not None:
        defaults = {
            "OLLAMA_CONTEXT_LENGTH": str(row.context_length),
            "OLLAMA_NUM_PARALLEL": str(row.parallel),
            "OLLAMA_KV_CACHE_TYPE": row.kv_cache_type,
            "OLLAMA_FLASH_ATTENTION": "1" if row.flash_attention else "0",
        }
    explicit = tuple(name for name in _SIZING_VARS if (environ.get(name) or "").strip())
    values = {
        name: (environ.get(name) or "").strip() or defaults.get(name, "") for name in _SIZING_VARS
    }
    values = {name: value for name, value in values.items() if value}
    if values.get("OLLAMA_KV_CACHE_TYPE", "f16") not in BYTES_PER_ELEMENT:
        raise WorkerConfigError(
            "OLLAMA_KV_CACHE_TYPE",
            f"{values['OLLAMA_KV_CACHE_TYPE']!r} is not a cache type Ollama takes",
            "use f16, q8_0 or q4_0",
        )
    if values.get("OLLAMA_FLASH_ATTENTION", "1") not in _TRUE | _FALSE:
        raise WorkerConfigError("OLLAMA_FLASH_ATTENTION", "is not a boolean", "use 1 or 0")
    return EngineSizing(
        row=row,
        gpu_gib=gpu_gib,
        found_by=found_by if gpu_gib is not None else "nothing",
        values=tuple((name, values[name]) for name in _SIZING_VARS if name in values),
        explicit=explicit,
    )


def _positive(text: str) -> int | None:
    # a value the handler refuses is left to the handler's settings to name
    return int(text) if text.isdigit() and int(text) > 0 else None
