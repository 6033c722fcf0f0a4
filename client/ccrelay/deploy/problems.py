"""serverless.yml's validation errors in its own words: the field path, what is wrong and how
to fix it, one problem per field; pydantic's text is reworded and never echoes a value."""

from __future__ import annotations

import re

from pydantic import BaseModel, ValidationError

from ccrelay.deploy.errors import Problem

__all__ = ["REFERENCE_DOC", "problems_from"]

REFERENCE_DOC = "see the serverless.yml reference in docs/deploy.md"

_FIXES: dict[str, str] = {
    "name": "a short endpoint name such as ccrelay-qwen3-coder",
    "type": "QUEUE (jobs through RunPod's queue) or LOAD_BALANCER (requests straight to the workers)",
    "port": "the worker's HTTP port on a LOAD_BALANCER endpoint, e.g. 8000",
    "health_port": "where RunPod polls /ping on a LOAD_BALANCER endpoint; default: port",
    "image": "the worker image you pushed, with a tag: ghcr.io/<CCRELAY_IMAGE_OWNER>/ccrelay-worker:0.1.0",
    "model": "an Ollama model name such as qwen3-coder:30b",
    "gpu": "gpu: {types: [ADA_48_PRO, AMPERE_80], count: 1}",
    "gpu.types": "list RunPod GPU pool ids in priority order, e.g. [ADA_48_PRO, AMPERE_80]",
    "gpu.count": "GPUs per worker, 1 to 8",
    "workers": "workers: {min: 0, max: 3}; min 0 scales to zero",
    "workers.min": "0 scales to zero; more keeps workers warm (and billed)",
    "workers.max": "at least 1 (RunPod's default is 3)",
    "idle_timeout": "seconds an idle worker stays up, 1 to 3600 (RunPod's default is 5)",
    "scaler.type": "QUEUE_DELAY (scale when jobs wait) or REQUEST_COUNT (jobs per worker; the only one for LOAD_BALANCER)",
    "scaler.value": "seconds a job may wait (QUEUE_DELAY, at least 0.5) or jobs per worker (REQUEST_COUNT, a whole number)",
    "flashboot": "OFF, FLASHBOOT or PRIORITY_FLASHBOOT",
    "execution_timeout": "seconds a job may run, e.g. 600",
    "container_disk_gb": "5 to 500 GB; the model lives on the network volume, not here",
    "network_volume": "either `id: <existing volume id>`, or `name`, `size_gb` and `data_center` to create one",
    "network_volume.size_gb": "10 to 4000 GB; qwen3-coder:30b needs about 19 GB",
    "data_centers": "a list of RunPod data center ids such as [EU-RO-1], or leave it out",
    "env": "a mapping of NAME: value; use ${VAR} for secrets",
    "template.name": "a unique template name, or leave it out for '<name>-template'",
}


def problems_from(exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    """Each of pydantic's errors as a problem with its field path and fix, never its input."""
    problems: list[Problem] = []
    for error in exc.errors(include_input=False, include_url=False):
        loc = [str(part) for part in error["loc"]]
        path = ".".join(loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            problems.append(
                Problem(
                    path,
                    "unknown field",
                    f"remove it or fix its spelling; allowed: {_allowed(root, loc[:-1])}",
                )
            )
            continue
        if kind == "missing":
            problems.append(Problem(path, "is required", _fix_for(loc)))
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        message = re.sub(r" or instance of \w+", "", message)
        if loc and loc[0] == "env" and len(loc) >= 2 and kind != "value_error":
            loc = loc[:2]  # one problem per variable, not one per accepted type
            path, message = ".".join(loc), "must be a string, number or boolean"
        problem = Problem(path, message, _fix_for(loc))
        if problem not in problems:
            problems.append(problem)
    return problems


def _fix_for(loc: list[str]) -> str:
    for size in range(len(loc), 0, -1):
        hint = _FIXES.get(".".join(loc[:size]))
        if hint:
            return hint
    return REFERENCE_DOC


def _allowed(root: type[BaseModel], parent: list[str]) -> str:
    model = root
    for part in parent:
        field = model.model_fields.get(part)
        annotation = field.annotation if field else None
        candidates = [annotation, *getattr(annotation, "__args__", ())]
        nested = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
        if nested is None:
            return "(see docs/deploy.md)"
        model = nested
    return ", ".join(model.model_fields)
