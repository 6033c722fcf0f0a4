"""From serverless.yml to RunPod: desired state, current state, the difference, and applying it.

Idempotent by construction: resources are found by name, desired and current are compared field
by field (a field RunPod does not report is not compared), and only the top-level fields that
differ are PATCHed (a nested field such as
``workers`` is sent whole, so the result is the same whether RunPod merges or replaces it). A
second run with no change in serverless.yml makes no write call.

The wire shape is RunPod REST v2: an endpoint carries its container settings itself (image,
disk, env; "spread from a template"), GPUs as ``gpu.pools``, ``workers.{min,max}``,
``scaling.{type,value,idleTimeout}``, ``timeout`` in ms, ``flashboot`` as OFF / FLASHBOOT /
PRIORITY_FLASHBOOT, ``networkVolumes`` and ``dataCenterIds``. The template holds the same
container settings, so the console can start more endpoints from it. Every mapping to the wire
is in :func:`template_body`, :func:`endpoint_body` and :func:`volume_body`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from ccrelay.deploy.errors import DeployError, RunPodNotFound
from ccrelay.deploy.rest import RunPodRest
from ccrelay.deploy.spec import DeploySpec

__all__ = [
    "NEW_VOLUME",
    "Applied",
    "Change",
    "CurrentState",
    "Plan",
    "apply_plan",
    "config_snippet",
    "endpoint_body",
    "make_plan",
    "read_state",
    "template_body",
    "volume_body",
]

NEW_VOLUME = "<network volume created by this deploy>"
HIDDEN = "(value hidden)"


def template_body(deploy: DeploySpec) -> dict[str, Any]:
    spec = deploy.spec
    return {
        "name": spec.template_name,
        "image": spec.image,
        "disk": spec.container_disk_gb,
        "env": dict(deploy.env),
        "serverless": True,
    }


def endpoint_body(deploy: DeploySpec, volume_id: str | None) -> dict[str, Any]:
    spec = deploy.spec
    body: dict[str, Any] = {
        "name": spec.name,
        "image": spec.image,
        "disk": spec.container_disk_gb,
        "env": dict(deploy.env),
        "gpu": {"pools": list(spec.gpu.types), "count": spec.gpu.count},
        "workers": {"min": spec.workers.min, "max": spec.workers.max},
        "scaling": {
            "type": spec.scaler.type,
            "value": spec.scaler.value,
            "idleTimeout": spec.idle_timeout,
        },
        "timeout": spec.execution_timeout * 1000,
        "flashboot": spec.flashboot,
    }
    data_centers = list(spec.data_centers)
    volume = spec.network_volume
    if not data_centers and volume is not None and volume.data_center:
        data_centers = [volume.data_center]
    if data_centers:
        body["dataCenterIds"] = data_centers
    if volume_id is not None:
        body["networkVolumes"] = [volume_id]
    return body


def volume_body(deploy: DeploySpec) -> dict[str, Any]:
    volume = deploy.spec.network_volume
    assert volume is not None and volume.id is None
    return {"name": volume.name, "size": volume.size_gb, "dataCenter": volume.data_center}


@dataclass
class CurrentState:
    """What RunPod has now for the names serverless.yml uses (None: absent)."""

    endpoint: dict[str, Any] | None = None
    template: dict[str, Any] | None = None
    volume: dict[str, Any] | None = None


@dataclass
class Change:
    """One resource: create it (``body``), update it (``patch``), or leave it (``action`` none)."""

    resource: Literal["network volume", "template", "endpoint"]
    name: str
    action: Literal["create", "update", "none"]
    resource_id: str | None = None
    body: dict[str, Any] = field(default_factory=dict)
    patch: dict[str, Any] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)

    def describe(self, *, dry_run: bool) -> list[str]:
        label = f"{self.resource} {self.name!r}" + (
            f" ({self.resource_id})" if self.resource_id else ""
        )
        if self.action == "none":
            return [f"{label}: up to date"]
        verb = {"create": "create", "update": "update"}[self.action]
        head = f"{label}: {'would ' if dry_run else ''}{verb}"
        return [head, *(f"    {line}" for line in self.details)]


@dataclass
class Plan:
    volume: Change | None
    template: Change
    endpoint: Change

    @property
    def changes(self) -> list[Change]:
        return [c for c in (self.volume, self.template, self.endpoint) if c is not None]

    @property
    def changed(self) -> bool:
        return any(c.action != "none" for c in self.changes)

    def describe(self, *, dry_run: bool) -> list[str]:
        lines: list[str] = []
        for change in self.changes:
            lines.extend(change.describe(dry_run=dry_run))
        if not self.changed:
            lines.append("no changes")
        return lines


@dataclass(frozen=True)
class Applied:
    endpoint_id: str
    template_id: str | None
    volume_id: str | None


async def read_state(rest: RunPodRest, deploy: DeploySpec) -> CurrentState:
    spec = deploy.spec
    endpoint = _one_named(await rest.list_endpoints(), spec.name, "endpoints")
    if endpoint is not None and endpoint.get("id"):
        endpoint = await rest.get_endpoint(str(endpoint["id"])) or endpoint
    template = _one_named(await rest.list_templates(), spec.template_name, "templates")
    volume: dict[str, Any] | None = None
    if spec.network_volume is not None:
        if spec.network_volume.id is not None:
            try:
                volume = await rest.get_network_volume(spec.network_volume.id)
            except RunPodNotFound:
                raise DeployError(
                    f"{deploy.source}: network_volume.id: RunPod has no network volume "
                    f"{spec.network_volume.id!r}; fix: check the id in the console (Storage), or "
                    "give name, size_gb and data_center to create one"
                ) from None
        else:
            candidates = [
                v
                for v in await rest.list_network_volumes()
                if v.get("name") == spec.network_volume.name
                and v.get("dataCenter", v.get("dataCenterId"))
                in (None, spec.network_volume.data_center)
            ]
            volume = _one_named(candidates, spec.network_volume.name or "", "network volumes")
    return CurrentState(endpoint=endpoint, template=template, volume=volume)


def make_plan(deploy: DeploySpec, current: CurrentState) -> Plan:
    spec = deploy.spec
    volume_change: Change | None = None
    volume_id: str | None = None
    if spec.network_volume is not None:
        if spec.network_volume.id is not None:
            volume_id = spec.network_volume.id
        elif current.volume is None:
            body = volume_body(deploy)
            volume_change = Change(
                "network volume",
                str(body["name"]),
                "create",
                body=body,
                details=[f"size {body['size']} GB in {body['dataCenter']}"],
            )
            volume_id = NEW_VOLUME
        else:
            volume_id = str(current.volume.get("id"))
            volume_change = _volume_update(deploy, current.volume)

    template_change = _diff(
        "template", spec.template_name, template_body(deploy), current.template, deploy.secret_keys
    )
    endpoint_change = _diff(
        "endpoint",
        spec.name,
        endpoint_body(deploy, volume_id),
        current.endpoint,
        deploy.secret_keys,
    )
    return Plan(volume=volume_change, template=template_change, endpoint=endpoint_change)


async def apply_plan(plan: Plan, rest: RunPodRest) -> Applied:
    """Make the writes the plan lists, in order: volume, template, endpoint."""
    volume_id: str | None = None
    if plan.volume is not None:
        if plan.volume.action == "create":
            created = await rest.create_network_volume(plan.volume.body)
            volume_id = _id_of(created, "network volume")
        else:
            volume_id = plan.volume.resource_id
            if plan.volume.action == "update" and volume_id:
                await rest.update_network_volume(volume_id, plan.volume.patch)

    template_id = plan.template.resource_id
    if plan.template.action == "create":
        template_id = _id_of(await rest.create_template(plan.template.body), "template")
    elif plan.template.action == "update" and template_id:
        await rest.update_template(template_id, plan.template.patch)

    endpoint = plan.endpoint
    if volume_id is not None:
        for target in (endpoint.body, endpoint.patch):
            if target.get("networkVolumes") == [NEW_VOLUME]:
                target["networkVolumes"] = [volume_id]
    if endpoint.action == "create":
        endpoint_id = _id_of(await rest.create_endpoint(endpoint.body), "endpoint")
    else:
        endpoint_id = endpoint.resource_id or ""
        if endpoint.action == "update":
            await rest.update_endpoint(endpoint_id, endpoint.patch)
    return Applied(endpoint_id=endpoint_id, template_id=template_id, volume_id=volume_id)


def config_snippet(endpoint_id: str | None, model: str, backend: str = "runpod") -> str:
    """The ccrelay config (LLM_BACKEND_CONFIG) pointing the runpod backend at the endpoint."""
    document = {
        "active": backend,
        "backends": {
            backend: {
                "type": "runpod",
                "endpoint_id": endpoint_id or "<endpoint id, known after deploy>",
                "api_key": "${RUNPOD_API_KEY}",
                "model": model,
            }
        },
    }
    return yaml.safe_dump(document, sort_keys=False)


# --- helpers ---------------------------------------------------------------------------------
def _one_named(items: list[dict[str, Any]], name: str, what: str) -> dict[str, Any] | None:
    found = [item for item in items if item.get("name") == name]
    if len(found) > 1:
        ids = ", ".join(str(item.get("id")) for item in found)
        raise DeployError(
            f"{len(found)} {what} are named {name!r} ({ids}); ccrelay deploy finds resources by "
            "name, so rename or delete all but one in the RunPod console"
        )
    return found[0] if found else None


def _id_of(created: dict[str, Any], what: str) -> str:
    value = created.get("id")
    if not value:
        raise DeployError(f"RunPod created the {what} but its answer carries no id")
    return str(value)


def _volume_update(deploy: DeploySpec, current: dict[str, Any]) -> Change:
    volume = deploy.spec.network_volume
    assert volume is not None and volume.size_gb is not None
    change = Change("network volume", str(volume.name), "none", resource_id=str(current.get("id")))
    size = current.get("size")
    if isinstance(size, int) and size < volume.size_gb:
        change.action = "update"
        change.patch = {"size": volume.size_gb}
        change.details = [f"size: {size} GB -> {volume.size_gb} GB (volumes only grow)"]
    elif isinstance(size, int) and size > volume.size_gb:
        change.details = [
            f"size {size} GB is larger than size_gb {volume.size_gb}; volumes cannot shrink, left as is"
        ]
    return change


def _diff(
    resource: Literal["template", "endpoint"],
    name: str,
    desired: dict[str, Any],
    current: dict[str, Any] | None,
    secret_keys: frozenset[str],
) -> Change:
    if current is None:
        return Change(
            resource, name, "create", body=desired, details=_describe_create(desired, secret_keys)
        )
    change = Change(resource, name, "none", resource_id=str(current.get("id") or "") or None)
    for key, value in desired.items():
        if key not in current:
            continue  # RunPod does not report it: nothing to compare, nothing to patch
        if key == "env":
            if _env_differs(value, current.get("env")):
                change.patch[key] = value
                change.details.extend(_describe_env(value, current.get("env"), secret_keys))
        elif _differs(value, current.get(key)):
            change.patch[key] = value
            change.details.append(f"{key}: {_show(current.get(key))} -> {_show(value)}")
    if change.patch:
        change.action = "update"
    return change


def _differs(desired: Any, current: Any) -> bool:
    """Compare only the fields we manage and RunPod reports; it may answer with more."""
    if isinstance(desired, dict):
        if not isinstance(current, dict):
            return True
        return any(k in current and _differs(v, current[k]) for k, v in desired.items())
    if isinstance(desired, list):
        return not isinstance(current, list) or list(desired) != list(current)
    if isinstance(desired, bool) or isinstance(current, bool):
        return desired is not current
    return bool(desired != current)


def _env_differs(desired: dict[str, str], current: Any) -> bool:
    if not isinstance(current, dict):
        return bool(desired) or current is not None
    return {k: str(v) for k, v in current.items()} != desired


def _describe_env(desired: dict[str, str], current: Any, secret_keys: frozenset[str]) -> list[str]:
    old = {k: str(v) for k, v in current.items()} if isinstance(current, dict) else {}
    lines: list[str] = []
    for key in sorted(set(desired) | set(old)):
        if key not in old:
            lines.append(f"env.{key}: added{_value(key, desired[key], secret_keys)}")
        elif key not in desired:
            lines.append(f"env.{key}: removed")
        elif old[key] != desired[key]:
            if key in secret_keys:
                lines.append(f"env.{key}: changed {HIDDEN}")
            else:
                lines.append(f"env.{key}: {json.dumps(old[key])} -> {json.dumps(desired[key])}")
    return lines


def _describe_create(body: dict[str, Any], secret_keys: frozenset[str]) -> list[str]:
    lines: list[str] = []
    for key, value in body.items():
        if key == "env":
            shown = ", ".join(
                f"{k}={HIDDEN}" if k in secret_keys else f"{k}={json.dumps(v)}"
                for k, v in sorted(value.items())
            )
            lines.append(f"env: {shown or '(none)'}")
        else:
            lines.append(f"{key}: {_show(value)}")
    return lines


def _value(key: str, value: str, secret_keys: frozenset[str]) -> str:
    return f" {HIDDEN}" if key in secret_keys else f" = {json.dumps(value)}"


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    return json.dumps(value, separators=(", ", ": "))
