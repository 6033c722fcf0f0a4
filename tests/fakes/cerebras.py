"""Cerebras' OpenAI-compatible API (api.cerebras.ai/v1): a `Profile` of the OpenAI-compatible fake.

Served by `tests.fakes.openai_compat.ProfiledServer` (the ``profiled("cerebras")`` fixture).
"""

from __future__ import annotations

from typing import Any

from tests.fakes.openai_compat import Profile, Refusal

__all__ = ["CerebrasProfile"]


class CerebrasProfile(Profile):
    """Cerebras' OpenAI-compatible API (api.cerebras.ai/v1), as documented and reported:

    - the catalog (``GET /v1/models``, late 2026): ``gpt-oss-120b``, ``qwen-3.8-27b``, both
      reasoning models; a retired id (``qwen-3-coder-480b``) answers 404 ``model_not_found``;
    - reasoning comes as ``reasoning`` on the message and on stream deltas;
    - ``reasoning_effort`` is ``low`` | ``medium`` | ``high``, and for gpt-oss only (others 400);
    - tool schemas with keywords it does not support answer 400 ``Unsupported JSON schema
      fields: {...}`` (claude-code-router issue #708; dcdpr/jp#531 lists minItems, maxItems,
      pattern, format);
    - unknown request properties are refused, ``wrong_api_format`` (Gitlawb/openclaude#740:
      ``store``; free-claude-code#1136: ``reasoning_content`` on assistant messages);
    - ``response_format`` json_schema needs a ``name`` (cerebras-cloud-sdk-python#4);
    - errors are flat ``{"message", "type", "param", "code"}`` objects.
    """

    name = "cerebras"
    models = ("gpt-oss-120b", "qwen-3.8-27b")
    retired = ("qwen-3-coder-480b", "llama-3.3-70b")
    unsupported_schema = frozenset(
        {"minItems", "maxItems", "pattern", "format", "minLength", "maxLength"}
    )
    known_fields = frozenset(
        {
            "model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p",
            "stream", "stream_options", "tools", "tool_choice", "stop", "seed", "response_format",
            "reasoning_effort", "user", "n", "logprobs", "top_logprobs",
        }
    )  # fmt: skip
    known_message_fields = frozenset({"role", "content", "tool_calls", "tool_call_id", "name"})

    def error(self, message: str, code: str | None = None, param: str | None = None) -> dict:
        return {"message": message, "type": "invalid_request_error", "param": param, "code": code}

    def check(self, body: dict[str, Any]) -> None:
        for name in body:
            if name not in self.known_fields:
                raise Refusal(
                    422,
                    self.error(
                        f"body.{name}: property 'body.{name}' is unsupported",
                        "wrong_api_format",
                        "validation_error",
                    ),
                )
        for i, message in enumerate(body.get("messages") or []):
            for name in message:
                if name not in self.known_message_fields:
                    path = f"messages.{i}.{message.get('role')}.{name}"
                    raise Refusal(
                        400,
                        self.error(
                            f"{path}: property '{path}' is unsupported",
                            "wrong_api_format",
                            "validation_error",
                        ),
                    )
        model = body.get("model")
        if model in self.retired or model not in self.models:
            raise Refusal(
                404,
                {
                    "message": f"Model {model} does not exist or you do not have access to it.",
                    "type": "not_found_error",
                    "param": "model",
                    "code": "model_not_found",
                },
            )
        effort = body.get("reasoning_effort")
        if effort is not None and (
            not str(model).startswith("gpt-oss") or effort not in ("low", "medium", "high")
        ):
            raise Refusal(
                400,
                self.error(
                    f"reasoning_effort {effort!r} is not supported for {model}",
                    "wrong_api_format",
                    "reasoning_effort",
                ),
            )
        for tool in body.get("tools") or []:
            found = _keywords(tool.get("function", {}).get("parameters")) & self.unsupported_schema
            if found:
                raise Refusal(
                    400,
                    self.error(
                        f"Unsupported JSON schema fields: {found}", "wrong_api_format", "tools"
                    ),
                )
        fmt = body.get("response_format")
        if (
            isinstance(fmt, dict)
            and fmt.get("type") == "json_schema"
            and not (fmt.get("json_schema") or {}).get("name")
        ):
            raise Refusal(
                400,
                self.error(
                    "response_format.json_schema.name: Field required",
                    "wrong_api_format",
                    "response_format",
                ),
            )
        for message in body.get("messages") or []:
            content = message.get("content")
            if isinstance(content, list) and any(p.get("type") == "image_url" for p in content):
                raise Refusal(
                    400,
                    self.error(
                        "image inputs are not supported by this model",
                        "wrong_api_format",
                        "messages",
                    ),
                )


def _keywords(schema: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                for sub in value.values():
                    found |= _keywords(sub)
            elif isinstance(value, dict):
                found |= _keywords(value)
            elif isinstance(value, list):
                for sub in value:
                    found |= _keywords(sub)
    return found
