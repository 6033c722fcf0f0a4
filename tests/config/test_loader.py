"""The config matrix: where config comes from, what it resolves to, and how each mistake reads.

Every error must name the source (the file, or inline JSON), the field path and the fix, and must
never contain a secret value: each broken file below carries a key next to the mistake.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from ccrelay.backends.anthropic import AnthropicSettings
from ccrelay.backends.cerebras import CerebrasSettings
from ccrelay.backends.factory import load_client_config
from ccrelay.backends.openai import OpenAISettings
from ccrelay_config import CcrelayConfig
from ccrelay_config.errors import (
    ConfigError,
    ConfigFileError,
    ConfigValidationError,
    MissingVariableError,
    UnknownBackendTypeError,
)

SECRET = "sk-test-SECRET-123456"

VALID_YAML = """\
# ccrelay backends
active: cerebras
fallback: [litellm, anthropic]
backends:
  cerebras:
    type: cerebras
    api_key: ${CEREBRAS_API_KEY}
    models:
      "claude-*haiku*": qwen-3-32b
  litellm:
    type: openai
    base_url: ${LITELLM_URL:-http://localhost:4000/v1}
    api_key: dummy
    model: qwen3-coder
    headers:
      X-Template: "$${NOT_A_VAR}"
  anthropic:
    type: anthropic
gateway:
  port: 8099
"""


def load(env: dict[str, str]) -> CcrelayConfig:
    return load_client_config(env)


def enabled(config: str | Path, **extra: str) -> dict[str, str]:
    return {"ENABLE_MULTI_BACKEND": "true", "LLM_BACKEND_CONFIG": str(config), **extra}


def write(tmp_path: Path, text: str, name: str = "ccrelay.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(env: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(env)
    return caught.value


def assert_clean(error: ConfigError, source: str | Path) -> str:
    """The error names its source and a fix, and holds no secret anywhere."""
    text = str(error)
    assert str(source) in text
    assert "fix:" in text
    for rendered in (text, repr(error), repr(error.problems), repr(error.args)):
        assert SECRET not in rendered
    assert error.__cause__ is None or SECRET not in str(error.__cause__)
    return text


# -- where the config comes from --------------------------------------------------------------


def test_valid_yaml_file(tmp_path: Path) -> None:
    path = write(tmp_path, VALID_YAML)
    config = load(enabled(path, CEREBRAS_API_KEY=SECRET))

    assert config.source == str(path)
    assert config.multi_backend_enabled
    assert config.active == "cerebras"
    assert config.chain() == ["cerebras", "litellm", "anthropic"]
    cerebras = config.backends["cerebras"]
    assert isinstance(cerebras, CerebrasSettings)
    assert cerebras.api_key == SecretStr(SECRET)
    assert cerebras.base_url == "https://api.cerebras.ai/v1"
    litellm = config.backends["litellm"]
    assert isinstance(litellm, OpenAISettings)
    assert litellm.base_url == "http://localhost:4000/v1"
    assert litellm.headers == {"X-Template": "${NOT_A_VAR}"}
    assert isinstance(config.backends["anthropic"], AnthropicSettings)
    assert config.gateway.port == 8099


def test_variable_overrides_default_in_file(tmp_path: Path) -> None:
    path = write(tmp_path, VALID_YAML)
    config = load(enabled(path, CEREBRAS_API_KEY=SECRET, LITELLM_URL="https://proxy.example/v1/"))
    assert config.backends["litellm"].base_url == "https://proxy.example/v1"


def test_json_file(tmp_path: Path) -> None:
    document = {
        "active": "local",
        "backends": {"local": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}},
    }
    path = write(tmp_path, json.dumps(document), "ccrelay.json")
    config = load(enabled(path))
    assert config.active == "local"
    assert config.backends["local"].api_key is None


def test_inline_json(tmp_path: Path) -> None:
    inline = json.dumps({"backends": {"cerebras": {"api_key": "${CEREBRAS_API_KEY}"}}})
    config = load(enabled("  " + inline + "\n", CEREBRAS_API_KEY=SECRET))
    assert config.source == "LLM_BACKEND_CONFIG (inline JSON)"
    # `type` defaults to the backend's name; `active` to the first backend.
    assert isinstance(config.backends["cerebras"], CerebrasSettings)
    assert config.active == "cerebras"


def test_yaml_file_with_yml_suffix_and_no_suffix(tmp_path: Path) -> None:
    for name in ("ccrelay.yml", "ccrelay"):
        path = write(tmp_path, VALID_YAML, name)
        assert load(enabled(path, CEREBRAS_API_KEY=SECRET)).active == "cerebras"


def test_home_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path, VALID_YAML)
    config = load(enabled("~/ccrelay.yaml", CEREBRAS_API_KEY=SECRET))
    assert config.source == str(tmp_path / "ccrelay.yaml")


# -- the ENABLE_MULTI_BACKEND switch and LLM_BACKEND --------------------------------------------


@pytest.mark.parametrize("flag", [None, "", "false", "0", "no", "off", "FALSE"])
def test_disabled_means_plain_anthropic_whatever_the_file_says(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, flag: str | None
) -> None:
    # The file does not even exist: it is not read at all.
    env = {"LLM_BACKEND_CONFIG": str(tmp_path / "missing.yaml"), "LLM_BACKEND": "cerebras"}
    if flag is not None:
        env["ENABLE_MULTI_BACKEND"] = flag
    with caplog.at_level(logging.DEBUG, logger="ccrelay"):
        config = load(env)
    assert not config.multi_backend_enabled
    assert config.active == "anthropic"
    assert list(config.backends) == ["anthropic"]
    assert config.backends["anthropic"].base_url == "https://api.anthropic.com"
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("ccrelay")]
    assert len(lines) == 1
    assert "ENABLE_MULTI_BACKEND" in lines[0]
    assert "plain Anthropic" in lines[0]
    assert "LLM_BACKEND_CONFIG is ignored" in lines[0]


def test_disabled_without_a_file_does_not_mention_one(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="ccrelay"):
        config = load({"ANTHROPIC_API_KEY": SECRET})
    assert config.active == "anthropic"
    assert config.backends["anthropic"].api_key == SecretStr(SECRET)
    assert len(caplog.records) == 1
    assert "ignored" not in caplog.records[0].getMessage()
    assert SECRET not in caplog.text


@pytest.mark.parametrize("flag", ["true", "TRUE", "1", "yes", "on", " True "])
def test_enabled_spellings(tmp_path: Path, flag: str) -> None:
    path = write(tmp_path, VALID_YAML)
    env = {"ENABLE_MULTI_BACKEND": flag, "LLM_BACKEND_CONFIG": str(path)}
    assert load({**env, "CEREBRAS_API_KEY": SECRET}).active == "cerebras"


def test_enabled_without_a_file_is_plain_anthropic() -> None:
    config = load({"ENABLE_MULTI_BACKEND": "1"})
    assert config.multi_backend_enabled
    assert config.active == "anthropic"
    assert config.backends["anthropic"].api_key is None


def test_llm_backend_overrides_active(tmp_path: Path) -> None:
    path = write(tmp_path, VALID_YAML)
    config = load(enabled(path, CEREBRAS_API_KEY=SECRET, LLM_BACKEND="anthropic"))
    assert config.active == "anthropic"
    assert config.chain() == ["anthropic", "litellm"]


def test_unknown_llm_backend_lists_known_names(tmp_path: Path) -> None:
    path = write(tmp_path, VALID_YAML)
    error = config_error(enabled(path, CEREBRAS_API_KEY=SECRET, LLM_BACKEND="cerebrus"))
    text = assert_clean(error, "LLM_BACKEND")
    assert "'cerebrus'" in text
    assert "anthropic, cerebras, litellm" in text
    assert str(path) in text


# -- each mistake: source, field path, fix, and no secret ---------------------------------------


def test_missing_variable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"backends:\n  cerebras:\n    api_key: ${{CEREBRAS_API_KEY}}\n"
        f"  other:\n    type: openai\n    base_url: http://h/v1\n    api_key: {SECRET}\n",
    )
    error = config_error(enabled(path))
    assert isinstance(error, MissingVariableError)
    text = assert_clean(error, path)
    assert "backends.cerebras.api_key" in text
    assert "CEREBRAS_API_KEY is not set" in text
    assert "export CEREBRAS_API_KEY=" in text


def test_unknown_type_lists_known_types(tmp_path: Path) -> None:
    path = write(tmp_path, f"backends:\n  x:\n    type: cerebrass\n    api_key: {SECRET}\n")
    error = config_error(enabled(path))
    assert isinstance(error, UnknownBackendTypeError)
    text = assert_clean(error, path)
    assert "backends.x.type" in text
    assert "'cerebrass'" in text
    for known in ("anthropic", "cerebras", "openai"):
        assert known in text


def test_unknown_field_names_it_and_the_allowed_fields(tmp_path: Path) -> None:
    path = write(tmp_path, f"backends:\n  cerebras:\n    api_key: {SECRET}\n    modle: qwen\n")
    error = config_error(enabled(path))
    assert isinstance(error, ConfigValidationError)
    text = assert_clean(error, path)
    assert "backends.cerebras.modle" in text
    assert "remove `modle`" in text
    assert "allowed here:" in text
    for allowed in ("api_key", "base_url", "model", "models", "timeouts"):
        assert allowed in text


def test_unknown_nested_field_lists_that_level(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"backends:\n  cerebras:\n    api_key: {SECRET}\n    timeouts:\n      idle: 5\n",
    )
    text = assert_clean(config_error(enabled(path)), path)
    assert "backends.cerebras.timeouts.idle" in text
    assert "connect_s, first_byte_s, idle_s, total_s" in text


def test_unknown_top_level_field(tmp_path: Path) -> None:
    path = write(tmp_path, f"activ: cerebras\nbackends:\n  cerebras:\n    api_key: {SECRET}\n")
    text = assert_clean(config_error(enabled(path)), path)
    assert "activ:" in text
    assert "allowed here: active, backends, fallback" in text
    assert "source" not in text.split("allowed here:")[1]


def test_bad_url(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"backends:\n  p:\n    type: openai\n    base_url: localhost:4000\n    api_key: {SECRET}\n",
    )
    text = assert_clean(config_error(enabled(path)), path)
    assert "backends.p.base_url" in text
    assert "http:// or https://" in text
    assert "https://" in text.split("fix:")[1]


def test_wrong_types_are_all_listed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "backends:\n"
        "  cerebras:\n"
        f"    api_key: {SECRET}\n"
        "    retry: {max_attempts: lots}\n"
        "    models: [claude]\n"
        "    timeouts: {idle_s: -1}\n"
        "gateway: {port: 99999}\n",
    )
    error = config_error(enabled(path))
    assert isinstance(error, ConfigValidationError)
    text = assert_clean(error, path)
    paths = {p.path for p in error.problems}
    assert {
        "backends.cerebras.retry.max_attempts",
        "backends.cerebras.models",
        "backends.cerebras.timeouts.idle_s",
    } <= paths
    assert "problems" in text
    assert "max_attempts` a value of the right type" in text


def test_wrong_top_level_type(tmp_path: Path) -> None:
    path = write(
        tmp_path, f"backends:\n  cerebras:\n    api_key: {SECRET}\ngateway: {{port: 99999}}\n"
    )
    error = config_error(enabled(path))
    text = assert_clean(error, path)
    assert "gateway.port" in text


def test_secret_as_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    # A numeric "key" that fails validation: the input must not appear in the message.
    path = write(
        tmp_path,
        "backends:\n  cerebras:\n    api_key: 123456\n    model: [sk-test-SECRET-123456]\n",
    )
    error = config_error(enabled(path))
    assert_clean(error, path)
    assert "123456" not in str(error)


def test_unreadable_file(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory.yaml"
    directory.mkdir()
    error = config_error(enabled(directory))
    assert isinstance(error, ConfigFileError)
    text = assert_clean(error, directory)
    assert "cannot read the file" in text


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"backends:\n  c:\n    api_key: " + SECRET.encode() + b"\xff\xfe\n")
    error = config_error(enabled(path))
    assert isinstance(error, ConfigFileError)
    assert "UTF-8" in assert_clean(error, path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    error = config_error(enabled(path))
    assert isinstance(error, ConfigFileError)
    text = assert_clean(error, path)
    assert "file not found" in text
    assert "LLM_BACKEND_CONFIG" in text


def test_yaml_syntax_error_gives_the_position(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"backends:\n  cerebras:\n    api_key: {SECRET}\n     model: : bad\n",
    )
    error = config_error(enabled(path))
    assert isinstance(error, ConfigFileError)
    text = assert_clean(error, path)
    assert "not valid YAML" in text
    assert "line 4" in text
    assert "column" in text


def test_json_syntax_error_gives_the_position(tmp_path: Path) -> None:
    path = write(tmp_path, '{"backends": {"c": {"api_key": "' + SECRET + '",}}}', "c.json")
    error = config_error(enabled(path))
    assert isinstance(error, ConfigFileError)
    text = assert_clean(error, path)
    assert "not valid JSON (line 1, column" in text


def test_inline_json_syntax_error() -> None:
    raw = '{"backends": {"c": {"api_key": "' + SECRET + '"'
    error = config_error(enabled(raw))
    text = assert_clean(error, "LLM_BACKEND_CONFIG (inline JSON)")
    assert "not valid JSON" in text


@pytest.mark.parametrize(
    "text", ["- cerebras\n- " + SECRET + "\n", SECRET + "\n", "", "# only a comment\n"]
)
def test_non_mapping_document(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    error = config_error(enabled(path))
    assert isinstance(error, ConfigValidationError)
    message = assert_clean(error, path)
    assert "must be a mapping" in message


def test_inline_json_array_is_not_taken_for_a_path() -> None:
    error = config_error(enabled('["' + SECRET + '"]'))
    assert "must be a mapping" in assert_clean(error, "LLM_BACKEND_CONFIG (inline JSON)")


@pytest.mark.parametrize("backends", ["", "backends: {}\n", "backends: [a]\n"])
def test_missing_or_empty_backends(tmp_path: Path, backends: str) -> None:
    path = write(tmp_path, f"active: x\nsecret_note: {SECRET}\n{backends}")
    error = config_error(enabled(path))
    text = assert_clean(error, path)
    assert "backends: missing or empty" in text


def test_backend_entry_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, f"backends:\n  cerebras: {SECRET}\n")
    error = config_error(enabled(path))
    text = assert_clean(error, path)
    assert "backends.cerebras: must be a mapping" in text


def test_fallback_naming_an_undefined_backend(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"fallback: [cerebras, litelm]\nbackends:\n  cerebras:\n    api_key: {SECRET}\n",
    )
    error = config_error(enabled(path))
    assert isinstance(error, ConfigValidationError)
    text = assert_clean(error, path)
    assert "fallback[1]" in text
    assert "'litelm'" in text
    assert "use one of: cerebras" in text


def test_active_naming_an_undefined_backend(tmp_path: Path) -> None:
    path = write(tmp_path, f"active: cerebrus\nbackends:\n  cerebras:\n    api_key: {SECRET}\n")
    text = assert_clean(config_error(enabled(path)), path)
    assert "active: names backend 'cerebrus'" in text
    assert "use one of: cerebras" in text


def test_openai_backend_requires_a_base_url(tmp_path: Path) -> None:
    path = write(tmp_path, f"backends:\n  proxy:\n    type: openai\n    api_key: {SECRET}\n")
    text = assert_clean(config_error(enabled(path)), path)
    assert "backends.proxy.base_url: Field required" in text
    assert "add `base_url`" in text


# -- the resolved model -------------------------------------------------------------------------


def test_config_is_frozen_and_masked(tmp_path: Path) -> None:
    path = write(tmp_path, VALID_YAML)
    config = load(enabled(path, CEREBRAS_API_KEY=SECRET))
    with pytest.raises(ValidationError):
        config.backends["cerebras"].model = "other"  # type: ignore[misc]
    masked = config.masked()
    assert masked["backends"]["cerebras"]["api_key"] == "********"
    assert SECRET not in json.dumps(masked)
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert SECRET not in repr(config.backends["cerebras"])


def test_model_map_wildcards_first_match_wins() -> None:
    settings = CerebrasSettings(
        type="cerebras",
        model="big",
        models={"claude-*haiku*": "small", "claude-*": "medium", "claude-3-5-haiku": "never"},
    )
    assert settings.resolve_model("claude-3-5-haiku-20241022") == "small"
    assert settings.resolve_model("claude-haiku-4-5") == "small"
    assert settings.resolve_model("claude-sonnet-4-5") == "medium"
    assert settings.resolve_model("gpt-4") == "big"
    assert settings.resolve_model(None) == "big"
    bare = OpenAISettings(type="openai", base_url="http://h/v1")
    assert bare.resolve_model("claude-sonnet-4-5") == "claude-sonnet-4-5"


@pytest.mark.parametrize("field", ["source", "multi_backend_enabled"])
def test_fields_ccrelay_sets_itself_are_refused(tmp_path: Path, field: str) -> None:
    path = write(
        tmp_path,
        f"{field}: x\nbackends:\n  c:\n    type: cerebras\n    api_key: {SECRET}\n",
    )
    error = config_error(enabled(path))
    assert isinstance(error, ConfigValidationError)
    text = assert_clean(error, path)
    assert f"{field}: is set by ccrelay itself" in text


def test_plugin_that_fails_to_import_is_a_config_error(tmp_path: Path) -> None:
    from importlib.metadata import EntryPoint

    from ccrelay.backends.registry import GROUP, BackendRegistry
    from ccrelay_config.loader import load_config

    broken = EntryPoint("broken", "no_such_module_for_ccrelay:Backend", GROUP)
    registry = BackendRegistry([broken])
    path = write(tmp_path, f"backends:\n  b:\n    type: broken\n    api_key: {SECRET}\n")
    with pytest.raises(UnknownBackendTypeError) as caught:
        load_config(enabled(path), registry.settings_for, registry.known_types)
    text = assert_clean(caught.value, path)
    assert "backends.b.type" in text
    assert "failed to import: No module named 'no_such_module_for_ccrelay'" in text
    assert "ModuleNotFoundError" not in text


@pytest.mark.parametrize("flag", ["ture", "nope", "enable"])
def test_a_gate_that_is_no_boolean_is_an_error_naming_the_variable(flag: str) -> None:
    from ccrelay.backends.registry import BackendRegistry
    from ccrelay_config.loader import load_config

    registry = BackendRegistry()
    with pytest.raises(ConfigValidationError) as caught:
        load_config({"ENABLE_MULTI_BACKEND": flag}, registry.settings_for, registry.known_types)
    assert str(caught.value).startswith("environment: ENABLE_MULTI_BACKEND: is not a recognised")


def test_every_dump_masks_header_values(tmp_path: Path) -> None:
    from ccrelay.backends.registry import BackendRegistry
    from ccrelay_config.loader import load_config

    token = "hdr-SECRET-0123456789"
    path = write(
        tmp_path,
        "backends:\n  v:\n    type: openai\n    base_url: http://h/v1\n"
        f"    headers: {{Authorization: 'Bearer {token}', X-Org: {token}, x-title: ccrelay}}\n",
    )
    registry = BackendRegistry()
    config = load_config(enabled(path), registry.settings_for, registry.known_types)
    for dump in (
        str(config.model_dump()),
        config.model_dump_json(),
        str(config.masked()),
        str(config.backends["v"].model_dump(mode="json")),
        repr(config),
    ):
        assert token not in dump
    assert config.model_dump()["backends"]["v"]["headers"]["x-title"] == "ccrelay"
    assert config.backends["v"].headers["X-Org"] == token  # the backend still sends it


# -- issue 24: the README's `anthropic: {type: anthropic}` reads ANTHROPIC_API_KEY ----------------


def test_a_file_s_anthropic_backend_reads_anthropic_api_key(tmp_path: Path) -> None:
    """It used to be read only with no config file at all, so the README's own fallback had
    no key under `ccrelay code`."""
    path = write(tmp_path, VALID_YAML)
    config = load(enabled(path, CEREBRAS_API_KEY="csk-x", ANTHROPIC_API_KEY=SECRET))
    assert config.backends["anthropic"].api_key == SecretStr(SECRET)
    assert SECRET not in json.dumps(config.masked())
    assert load(enabled(path, CEREBRAS_API_KEY="csk-x")).backends["anthropic"].api_key is None


def test_an_explicit_api_key_wins_over_the_environment(tmp_path: Path) -> None:
    text = "backends:\n  anthropic: {type: anthropic, api_key: sk-ant-own}\n"
    config = load(enabled(write(tmp_path, text), ANTHROPIC_API_KEY=SECRET))
    assert config.backends["anthropic"].api_key == SecretStr("sk-ant-own")


@pytest.mark.parametrize(
    ("fields", "read"),
    [
        ("base_url: https://proxy.example/anthropic", False),
        ("base_url: http://api.anthropic.com", False),
        ("base_url: https://proxy.example/anthropic, forward_credentials: true", True),
        ("forward_credentials: false", False),
    ],
)
def test_the_user_s_key_goes_only_where_the_config_trusts_it(
    tmp_path: Path, fields: str, read: bool
) -> None:
    """Issue 25: ANTHROPIC_API_KEY, like Claude Code's own credential, goes to Anthropic's API
    or to a host the config trusts in so many words, never to any base_url a file names."""
    text = f"backends:\n  anthropic: {{type: anthropic, {fields}}}\n"
    config = load(enabled(write(tmp_path, text), ANTHROPIC_API_KEY=SECRET))
    assert (config.backends["anthropic"].api_key is not None) is read


def test_other_backend_types_never_read_anthropic_api_key(tmp_path: Path) -> None:
    text = "backends:\n  vast: {type: openai, base_url: 'http://127.0.0.1:9/v1', model: m}\n"
    config = load(enabled(write(tmp_path, text), ANTHROPIC_API_KEY=SECRET))
    assert config.backends["vast"].api_key is None


def test_the_upstream_the_user_names_is_where_a_file_s_anthropic_backend_goes(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, VALID_YAML)
    env = enabled(
        path,
        CEREBRAS_API_KEY="csk-x",
        ANTHROPIC_API_KEY=SECRET,
        ANTHROPIC_BASE_URL_UPSTREAM="http://127.0.0.1:9",
    )
    anthropic = load(env).backends["anthropic"]
    assert isinstance(anthropic, AnthropicSettings)
    assert anthropic.base_url == "http://127.0.0.1:9"
    assert anthropic.forward_credentials is True  # the user named it: trusted
    assert anthropic.api_key == SecretStr(SECRET)
    plain = load({"ANTHROPIC_BASE_URL_UPSTREAM": "http://127.0.0.1:9", "ANTHROPIC_API_KEY": SECRET})
    assert plain.backends["anthropic"].base_url == "http://127.0.0.1:9"
    assert plain.backends["anthropic"].api_key == SecretStr(SECRET)


def test_a_hedge_fallback_that_names_no_backend_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"backends:\n  gpu:\n    type: runpod\n    endpoint_id: abc123\n    api_key: {SECRET}\n"
        "    cold_start: {hedge: {fallback: cerebrus}}\n"
        f"  cerebras:\n    type: cerebras\n    api_key: {SECRET}\n",
    )
    text = assert_clean(config_error(enabled(path)), path)
    assert "backends.gpu.cold_start.hedge.fallback names 'cerebrus'" in text
    assert "cerebras, gpu" in text
