"""Deploying the worker to RunPod: serverless.yml, the REST v2 client, the planner, the check.

- ``load_spec(path, environ) -> DeploySpec``: validate serverless.yml, resolve ``${VAR}``;
- ``template_body`` / ``endpoint_body`` / ``config_snippet``: serverless.yml on the wire, and the
  ccrelay config for the endpoint (queue or load-balanced);
- ``read_state`` / ``make_plan`` / ``apply_plan``: find by name, diff, create or PATCH;
- ``check_endpoint(session, api_key, ...) -> EndpointCheck``: was it cut to max workers 0?
- ``run_deploy(...)``: the ``ccrelay deploy`` command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ccrelay_wire.lazy import lazy_exports

API_URL_VARIABLE = "CCRELAY_RUNPOD_API_URL"
"""Overrides the RunPod REST API base URL (a test server, a proxy)."""

if TYPE_CHECKING:
    from ccrelay.deploy.bodies import config_snippet, endpoint_body, template_body
    from ccrelay.deploy.check import EndpointCheck, check_endpoint
    from ccrelay.deploy.command import run_deploy
    from ccrelay.deploy.planner import (
        Applied,
        Change,
        CurrentState,
        Plan,
        apply_plan,
        make_plan,
        read_state,
    )
    from ccrelay.deploy.rest import DEFAULT_API_URL, RunPodRest
    from ccrelay.deploy.spec import DeploySpec, ServerlessSpec, load_spec, parse_spec

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ccrelay.deploy.bodies": ("config_snippet", "endpoint_body", "template_body"),
        "ccrelay.deploy.check": ("EndpointCheck", "check_endpoint"),
        "ccrelay.deploy.command": ("run_deploy",),
        "ccrelay.deploy.planner": (
            "Applied",
            "Change",
            "CurrentState",
            "Plan",
            "apply_plan",
            "make_plan",
            "read_state",
        ),
        "ccrelay.deploy.rest": ("DEFAULT_API_URL", "RunPodRest"),
        "ccrelay.deploy.spec": ("DeploySpec", "ServerlessSpec", "load_spec", "parse_spec"),
    },
)

__all__ = [
    "API_URL_VARIABLE",
    "DEFAULT_API_URL",
    "Applied",
    "Change",
    "CurrentState",
    "DeploySpec",
    "EndpointCheck",
    "Plan",
    "RunPodRest",
    "ServerlessSpec",
    "apply_plan",
    "check_endpoint",
    "config_snippet",
    "endpoint_body",
    "load_spec",
    "make_plan",
    "parse_spec",
    "read_state",
    "run_deploy",
    "template_body",
]
