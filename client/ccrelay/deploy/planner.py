"""From serverless.yml to RunPod: desired state, current state, the difference, and applying it.

The bodies themselves are :mod:`ccrelay.deploy.bodies`' (RunPod REST v2 as its published spec
gives it). The template and the endpoint: a new endpoint is created *from* the template
(``templateId``; RunPod spreads its image, disk, ports and env into the endpoint), so the
template is never an orphan. RunPod keeps no link from the endpoint to the template, so an
existing endpoint's container settings are diffed and PATCHed on the endpoint itself; an
existing template is kept in step; a missing template is not recreated for an endpoint that
already exists (nothing would use it).

Idempotent by construction: resources are found by name and every field we set is compared
with the shape GET returns (a field GET leaves out counts as different); only the top-level
fields that differ are PATCHed, nested objects (``workers``, ``scaling``, ``gpu``) sent whole.
``type`` (QUEUE or LOAD_BALANCER) cannot be PATCHed: an endpoint of the other type under the
same name is an error. A second run with no change in serverless.yml makes no write call.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ccrelay.deploy.bodies import endpoint_body, template_body, volume_body
from ccrelay.deploy.errors import DeployError, RunPodNotFound
from ccrelay.deploy.rest import RunPodRest
from ccrelay.deploy.spec import DeploySpec

__all__ = [
    "NEW_TEMPLATE",
    "NEW_VOLUME",
    "Applied",
    "Change",
    "CurrentState",
    "Plan",
    "apply_plan",
    "make_plan",
    "read_state",
]

NEW_VOLUME = "<network volume created by this deploy>"
NEW_TEMPLATE = "<template created by this deploy>"
HIDDEN = "(value hidden)"


@dataclass
class CurrentState:
    """What RunPod has now for the names serverless.yml uses (None: absent, or not known)."""

    endpoint: dict[str, Any] | None = None
    template: dict[str, Any] | None = None
    volume: dict[str, Any] | None = None


_PATHS = {"network volume": "/network-volumes", "template": "/templates", "endpoint": "/serverless"}


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

    def request(self) -> tuple[str, str, dict[str, Any]] | None:
        """The write this change makes: method, path (under the API base URL), body."""
        base = _PATHS[self.resource]
        if self.action == "create":
            return "POST", base, self.body
        if self.action == "update":
            return "PATCH", f"{base}/{self.resource_id}", self.patch
        return None

    def describe(
        self, *, dry_run: bool, base_url: str = "", secret_keys: frozenset[str] = frozenset()
    ) -> list[str]:
        label = f"{self.resource} {self.name!r}" + (
            f" ({self.resource_id})" if self.resource_id else ""
        )
        request = self.request()
        if request is None:
            return [f"{label}: up to date", *(f"    {line}" for line in self.details)]
        method, path, body = request
        head = f"{label}: {'would ' if dry_run else ''}{self.action}"
        shown = json.dumps(masked(body, secret_keys), indent=2).splitlines()
        return [
            head,
            *(f"    {line}" for line in self.details),
            f"    {method} {base_url}{path}",
            *(f"    {line}" for line in shown),
        ]


def masked(body: dict[str, Any], secret_keys: frozenset[str]) -> dict[str, Any]:
    """`body` with the values of secret env variables hidden."""
    shown = copy.deepcopy(body)
    env = shown.get("env")
    if isinstance(env, dict):
        shown["env"] = {k: HIDDEN if k in secret_keys else v for k, v in env.items()}
    return shown


@dataclass
class Plan:
    volume: Change | None
    template: Change | None
    endpoint: Change

    @property
    def changes(self) -> list[Change]:
        return [c for c in (self.volume, self.template, self.endpoint) if c is not None]

    @property
    def changed(self) -> bool:
        return any(c.action != "none" for c in self.changes)

    @property
    def writes(self) -> int:
        return sum(1 for c in self.changes if c.action != "none")

    def describe(
        self, *, dry_run: bool, base_url: str = "", secret_keys: frozenset[str] = frozenset()
    ) -> list[str]:
        lines: list[str] = []
        for change in self.changes:
            lines.extend(
                change.describe(dry_run=dry_run, base_url=base_url, secret_keys=secret_keys)
            )
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
    reported = current.volume.get("dataCenter") if current.volume is not None else None
    volume_data_center = reported if isinstance(reported, str) else None
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

    secrets = deploy.secret_keys
    desired_template = template_body(deploy)
    template_change: Change | None
    if current.template is not None:
        template_change = _diff("template", desired_template, current.template, secrets)
    elif current.endpoint is None:
        template_change = Change("template", spec.template_name, "create", body=desired_template)
    else:
        template_change = None  # the endpoint exists without it: a new one would be an orphan

    if current.endpoint is None:
        template_id = (
            NEW_TEMPLATE
            if template_change is None or template_change.action == "create"
            else str(template_change.resource_id)
        )
        body = endpoint_body(deploy, volume_id, template_id, volume_data_center=volume_data_center)
        endpoint_change = Change(
            "endpoint",
            spec.name,
            "create",
            body=body,
            details=[f"from template {spec.template_name!r} (its container settings)"],
        )
    else:
        kind = current.endpoint.get("type")
        if kind is not None and kind != spec.type:
            raise DeployError(
                f"endpoint {spec.name!r} ({current.endpoint.get('id')}) is a {kind} endpoint and "
                f"serverless.yml asks for {spec.type}; RunPod cannot change an endpoint's type, "
                "so rename it in serverless.yml (name:) or delete it in the console"
            )
        desired = endpoint_body(deploy, volume_id, volume_data_center=volume_data_center)
        desired.pop("type")
        endpoint_change = _diff("endpoint", desired, current.endpoint, secrets)
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

    template_id: str | None = None
    if plan.template is not None:
        template_id = plan.template.resource_id
        if plan.template.action == "create":
            template_id = _id_of(await rest.create_template(plan.template.body), "template")
        elif plan.template.action == "update" and template_id:
            await rest.update_template(template_id, plan.template.patch)

    endpoint = plan.endpoint
    for target in (endpoint.body, endpoint.patch):
        if volume_id is not None and target.get("networkVolumes") == [NEW_VOLUME]:
            target["networkVolumes"] = [volume_id]
        if template_id is not None and target.get("templateId") == NEW_TEMPLATE:
            target["templateId"] = template_id
    if endpoint.action == "create":
        endpoint_id = _id_of(await rest.create_endpoint(endpoint.body), "endpoint")
    else:
        endpoint_id = endpoint.resource_id or ""
        if endpoint.action == "update":
            await rest.update_endpoint(endpoint_id, endpoint.patch)
    return Applied(endpoint_id=endpoint_id, template_id=template_id, volume_id=volume_id)


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
    desired: dict[str, Any],
    current: dict[str, Any],
    secret_keys: frozenset[str],
) -> Change:
    """Every field we set, against GET's shape; a field GET leaves out counts as changed."""
    name = str(desired.get("name"))
    change = Change(resource, name, "none", resource_id=str(current.get("id") or "") or None)
    for key, value in desired.items():
        if key == "name":
            continue  # found by it
        if key == "env":
            if _env_differs(value, current.get("env")):
                change.patch[key] = value
                change.details.extend(_describe_env(value, current.get("env"), secret_keys))
        elif key not in current or _differs(value, current.get(key)):
            change.patch[key] = value
            change.details.append(f"{key}: {_show(current.get(key))} -> {_show(value)}")
    if change.patch:
        change.action = "update"
    return change


def _differs(desired: Any, current: Any) -> bool:
    """Nested objects: each key we set (GET may report more, such as gpu's CUDA fields)."""
    if isinstance(desired, dict):
        if not isinstance(current, dict):
            return True
        return any(k not in current or _differs(v, current[k]) for k, v in desired.items())
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
            shown = HIDDEN if key in secret_keys else json.dumps(desired[key])
            lines.append(f"env.{key}: added {shown}")
        elif key not in desired:
            lines.append(f"env.{key}: removed")
        elif old[key] != desired[key]:
            if key in secret_keys:
                lines.append(f"env.{key}: changed {HIDDEN}")
            else:
                lines.append(f"env.{key}: {json.dumps(old[key])} -> {json.dumps(desired[key])}")
    return lines


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    return json.dumps(value, separators=(", ", ": "))
