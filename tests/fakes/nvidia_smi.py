"""A fake ``nvidia-smi`` for the one query the worker makes, as an executable on a PATH.

``nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits`` prints one line per GPU:
its total memory in MiB, a bare number (NVIDIA's ``nvidia-smi --help-query-gpu``:
"memory.total: Total installed GPU memory"; units MiB, dropped by ``nounits``). Any other
arguments get the real tool's complaint and exit code 2.

Memory of real cards as nvidia-smi reports it: RTX 4090 24564, L40S 46068, A100 80GB 81920,
H100 80GB 81559, H200 143771.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["install_nvidia_smi"]

QUERY = ["--query-gpu=memory.total", "--format=csv,noheader,nounits"]


def install_nvidia_smi(directory: Path, mib: list[int], *, exit_code: int = 0) -> Path:
    """Write ``directory/nvidia-smi`` listing GPUs of ``mib`` MiB each; returns the directory
    (prepend it to PATH). ``exit_code`` other than 0: the driver is not loaded (the real tool
    then prints its "couldn't communicate with the NVIDIA driver" message and exits 9)."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "nvidia-smi"
    lines = "\n".join(str(m) for m in mib)
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"if sys.argv[1:] != {QUERY!r}:\n"
        "    print('Invalid combination of input arguments.', file=sys.stderr)\n"
        "    sys.exit(2)\n"
        f"if {exit_code}:\n"
        "    print('NVIDIA-SMI has failed because it couldn\\'t communicate with the NVIDIA "
        "driver.')\n"
        f"    sys.exit({exit_code})\n"
        f"print({lines!r})\n"
    )
    script.chmod(0o755)
    return directory
