"""serverless.yml on the wire: the bodies RunPod's REST API v2 is sent, and the ccrelay config
that points a client at the endpoint.

The shape is RunPod REST v2 as its published spec gives it (Frontdoor v2.9.0, runpod/docs
``api-reference-v2/openapi.json``; tests validate every body against it):

* an endpoint has a routing ``type``: ``QUEUE`` or ``LOAD_BALANCER``; a load-balanced one must
  scale on ``{type: REQUEST_COUNT, requestCount}`` (``CreateEndpointRequest``'s if/then);
* ``gpu: {pools, count}``, ``workers: {min, max, idleTimeout}``: ``idleTimeout`` is "not
  applicable to queue-based endpoints scaling on requestCount" (``EndpointWorkers``), so it is
  left out for that one combination and sent otherwise, load-balanced endpoints included;
* ``scaling`` as ``{type: QUEUE_DELAY, queueDelay}`` or ``{type: REQUEST_COUNT, requestCount}``;
  ``timeout`` in ms, ``flashboot``, ``dataCenterIds``, ``networkVolumes``;
* a load-balanced worker's HTTP port is exposed (``ports: ["8000/http"]``: RunPod routes only
  to exposed ports) and its environment says where to serve (`spec.LOAD_BALANCER_ENV`).
"""

from __future__ import annotations

from typing import Any

import yaml

from ccrelay.deploy.spec import DeploySpec

__all__ = [
    "config_snippet",
    "direct_use",
    "endpoint_body",
    "template_body",
    "volume_body",
]


def _ports(deploy: DeploySpec) -> list[str]:
    spec = deploy.spec
    return [f"{port}/http" for port in dict.fromkeys((spec.http_port, spec.ping_port))]


def _container(deploy: DeploySpec) -> dict[str, Any]:
    spec = deploy.spec
    body: dict[str, Any] = {"image": spec.image, "disk": spec.container_disk_gb}
    body["env"] = dict(deploy.env)
    if spec.type == "LOAD_BALANCER":
        body["ports"] = _ports(deploy)
    return body


def template_body(deploy: DeploySpec) -> dict[str, Any]:
    """A serverless template, with ``startSsh``/``startJupyter`` off: RunPod's defaults are on
    and inject ``PUBLIC_KEY`` / ``JUPYTER_PASSWORD`` into the env."""
    return {
        "name": deploy.spec.template_name,
        **_container(deploy),
        "serverless": True,
        "startSsh": False,
        "startJupyter": False,
    }


def endpoint_body(
    deploy: DeploySpec,
    volume_id: str | None,
    template_id: str | None = None,
    *,
    volume_data_center: str | None = None,
) -> dict[str, Any]:
    """The endpoint as serverless.yml declares it: with `template_id`, the create body (the
    container settings come from the template); without, every field an update compares.
    Workers run where their volume is: with no ``data_centers``, the volume's data center
    (declared, or `volume_data_center` as RunPod reports an existing one) pins them."""
    spec = deploy.spec
    workers: dict[str, Any] = {"min": spec.workers.min, "max": spec.workers.max}
    if not (spec.type == "QUEUE" and spec.scaler.type == "REQUEST_COUNT"):
        workers["idleTimeout"] = spec.idle_timeout
    body: dict[str, Any] = {"name": spec.name, "type": spec.type}
    if template_id is not None:
        body["templateId"] = template_id
    else:
        body.update(_container(deploy))
    data_centers = list(spec.data_centers)
    volume = spec.network_volume
    if not data_centers and volume is not None:
        where = volume.data_center or volume_data_center
        data_centers = [where] if where else []
    body.update(
        gpu={"pools": list(spec.gpu.types), "count": spec.gpu.count},
        workers=workers,
        scaling=spec.scaler.wire(),
        timeout=spec.execution_timeout * 1000,
        flashboot=spec.flashboot,
        dataCenterIds=data_centers,
        networkVolumes=[volume_id] if volume_id is not None else [],
    )
    return body


def volume_body(deploy: DeploySpec) -> dict[str, Any]:
    volume = deploy.spec.network_volume
    assert volume is not None and volume.id is None
    return {"name": volume.name, "size": volume.size_gb, "dataCenter": volume.data_center}


def config_snippet(deploy: DeploySpec, endpoint_id: str | None) -> str:
    """The ccrelay config (LLM_BACKEND_CONFIG) for the endpoint: the ``runpod`` backend for a
    queue endpoint; for a load-balanced one, the worker's HTTP mode (Ollama's OpenAI dialect)
    behind RunPod's load balancer, which takes the RunPod key."""
    spec = deploy.spec
    ident = endpoint_id or "<endpoint id, known after deploy>"
    backend: dict[str, Any]
    if spec.type == "LOAD_BALANCER":
        name = "runpod-lb"
        backend = {
            "type": "ollama",
            "base_url": f"https://{ident}.api.runpod.ai/v1",
            "api_key": "${RUNPOD_API_KEY}",
            "model": spec.model,
        }
        window = deploy.env.get("OLLAMA_CONTEXT_LENGTH", "")
        if window.isdigit():
            backend["context_window"] = int(window)
    else:
        name = "runpod"
        backend = {
            "type": "runpod",
            "endpoint_id": ident,
            "api_key": "${RUNPOD_API_KEY}",
            "model": spec.model,
        }
    return yaml.safe_dump({"active": name, "backends": {name: backend}}, sort_keys=False)


def direct_use(deploy: DeploySpec, endpoint_id: str | None) -> list[str]:
    """How to point Claude Code straight at the endpoint, without the gateway."""
    ident = endpoint_id or "<endpoint id>"
    if deploy.spec.type == "LOAD_BALANCER":
        url = f"https://{ident}.api.runpod.ai"
    else:
        url = f"https://api.runpod.ai/v2/{ident}/openai"
    return [f"ANTHROPIC_BASE_URL={url}", "ANTHROPIC_AUTH_TOKEN=<your RunPod API key>"]
