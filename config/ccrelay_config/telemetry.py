"""Where latency records go: a log line always, a local JSONL file per day, optionally S3.

These models are standalone so the main config can embed :class:`TelemetrySettings` as its
``telemetry`` field. Nothing here reads the environment on import: paths that default to the
user's state directory stay ``None`` until the entry point calls
:meth:`TelemetrySettings.resolved` with the environment it read once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["S3SinkSettings", "TelemetrySettings", "default_state_dir"]


def default_state_dir(environ: Mapping[str, str], home: Path | None = None) -> Path:
    """``$CCRELAY_STATE_DIR``, else ``$XDG_STATE_HOME/ccrelay``, else ``~/.local/state/ccrelay``."""
    explicit = environ.get("CCRELAY_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = environ.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "ccrelay"
    return (home if home is not None else Path.home()) / ".local" / "state" / "ccrelay"


class S3SinkSettings(BaseModel):
    """Batched gzip JSONL uploads of latency records to S3 (or MinIO, or moto).

    Credentials: ``access_key_id``/``secret_access_key`` when given (write them as ``${VAR}``
    references in the config file), otherwise boto3's own chain (environment, profile, role).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bucket: str = Field(min_length=3)
    prefix: str = "ccrelay/latency"
    region: str | None = None
    endpoint_url: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    batch_max_records: int = Field(default=500, ge=1)
    batch_max_age_s: float = Field(default=60.0, gt=0)
    spool_dir: Path | None = None
    """Batches wait here until S3 has them; default ``<state dir>/s3-spool``."""
    queue_max_records: int = Field(default=10_000, ge=1)
    """Records held in memory before they reach the spool; beyond it new records are dropped."""
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    retry_initial_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)


class TelemetrySettings(BaseModel):
    """Telemetry for every backend attempt; embedded in the main config as ``telemetry``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    jsonl_dir: Path | None = None
    """Directory of ``latency-YYYY-MM-DD.jsonl`` files; default: the user state dir."""
    jsonl_enabled: bool = True
    s3: S3SinkSettings | None = None
    log_format: Literal["human", "json"] = "human"

    def resolved(self, environ: Mapping[str, str], home: Path | None = None) -> TelemetrySettings:
        """A copy with every defaulted path made concrete (call once, at the entry point)."""
        state_dir = default_state_dir(environ, home)
        update: dict[str, object] = {}
        if self.jsonl_dir is None:
            update["jsonl_dir"] = state_dir
        if self.s3 is not None and self.s3.spool_dir is None:
            update["s3"] = self.s3.model_copy(update={"spool_dir": state_dir / "s3-spool"})
        return self.model_copy(update=update) if update else self
