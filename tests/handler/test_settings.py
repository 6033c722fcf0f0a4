"""HandlerSettings.from_env: defaults, parsing, validation, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from ccrelay_handler.errors import SettingsError
from ccrelay_handler.settings import DEFAULT_MODEL, HandlerSettings


def test_defaults() -> None:
    settings = HandlerSettings.from_env({})
    assert settings.redis_url is None
    assert settings.redis_url_display == "embedded"
    assert settings.ollama_host == "http://127.0.0.1:11434"
    assert settings.model == DEFAULT_MODEL == "qwen3-coder:30b"
    assert settings.allowed_models == (DEFAULT_MODEL,)
    assert settings.cache_ttl_s == 86_400
    assert settings.concurrency == 4
    assert settings.redis_connect_timeout_s == settings.redis_timeout_s == 0.25
    assert settings.worker_api_key is None


def test_values_from_env(tmp_path: Path) -> None:
    settings = HandlerSettings.from_env(
        {
            "REDIS_URL": "rediss://default:hunter2@redis.example.com:6380/1",
            "CCRELAY_STATE_DIR": str(tmp_path),
            "OLLAMA_HOST": "0.0.0.0:11500",
            "CCRELAY_MODEL": "qwen3-coder:480b",
            "CCRELAY_ALLOWED_MODELS": "qwen3-coder:30b, qwen3-coder:480b,",
            "CCRELAY_CACHE_TTL": "60",
            "OLLAMA_NUM_PARALLEL": "8",
            "CCRELAY_WORKER_API_KEY": "sk-worker",
        }
    )
    assert settings.ollama_host == "http://127.0.0.1:11500"
    assert settings.allowed_models == ("qwen3-coder:30b", "qwen3-coder:480b")
    assert settings.cache_ttl_s == 60
    assert settings.concurrency == 8
    assert settings.embedded_redis_path.parent.parent == tmp_path
    assert settings.redis_url is not None
    assert settings.redis_url.get_secret_value().endswith("@redis.example.com:6380/1")


def test_configured_model_always_allowed() -> None:
    settings = HandlerSettings.from_env({"CCRELAY_MODEL": "a:1", "CCRELAY_ALLOWED_MODELS": "b:2"})
    assert settings.allowed_models == ("a:1", "b:2")


def test_cache_ttl_alias_and_precedence() -> None:
    assert HandlerSettings.from_env({"CACHE_TTL": "5"}).cache_ttl_s == 5
    both = {"CACHE_TTL": "5", "CCRELAY_CACHE_TTL": "7"}
    assert HandlerSettings.from_env(both).cache_ttl_s == 7


def test_password_never_in_repr_or_display() -> None:
    settings = HandlerSettings.from_env(
        {"REDIS_URL": "redis://user:s3cret-pw@h:6379/0", "CCRELAY_WORKER_API_KEY": "sk-abc123"}
    )
    for text in (repr(settings), str(settings), settings.redis_url_display):
        assert "s3cret-pw" not in text
        assert "sk-abc123" not in text
    assert settings.redis_url_display == "redis://***@h:6379/0"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REDIS_URL": "http://user:s3cret-pw@h:1"}, "REDIS_URL"),
        ({"CCRELAY_CACHE_TTL": "0"}, "CCRELAY_CACHE_TTL"),
        ({"OLLAMA_NUM_PARALLEL": "many"}, "OLLAMA_NUM_PARALLEL"),
        ({"CCRELAY_CACHE_NAMESPACE": "a:b"}, "CCRELAY_CACHE_NAMESPACE"),
    ],
)
def test_invalid_env_names_the_variable_without_echoing_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as info:
        HandlerSettings.from_env(env)
    assert named in str(info.value)
    assert "s3cret-pw" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_frozen() -> None:
    settings = HandlerSettings.from_env({})
    with pytest.raises(ValueError):
        settings.cache_ttl_s = 1  # type: ignore[misc]
