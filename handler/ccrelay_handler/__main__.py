"""``python -m ccrelay_handler [runpod SDK flags]``: the RunPod serverless worker entry point.

Reads the environment once into ``HandlerSettings`` and starts the SDK, which reads its own
flags (``--rp_serve_api``, ``--rp_api_port``, ``--rp_api_host``, ``--rp_log_level``...).
``--help`` describes the handler's own settings first, then the SDK's flags, and logs nothing.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from ccrelay_handler import settings as settings_module
from ccrelay_handler.errors import SettingsError
from ccrelay_handler.settings import HandlerSettings

_USAGE = """\
usage: python -m ccrelay_handler [RUNPOD SDK FLAGS]

The ccrelay RunPod serverless handler: OpenAI chat-completion jobs in, the Redis cache consulted
before Ollama. Every setting is an environment variable, read once at start:
"""


def help_text() -> str:
    """Our settings (the table in `ccrelay_handler.settings`' docstring), then the SDK's flags."""
    doc = settings_module.__doc__ or ""
    table = doc[doc.index("====") :].rstrip() if "====" in doc else ""
    import runpod.serverless  # the SDK's own parser; imported only for --help and for serving

    sdk = runpod.serverless.parser.format_help()
    sdk = sdk[sdk.index("options:") + len("options:") :] if "options:" in sdk else sdk
    return f"{_USAGE}\n{table}\n\nThe runpod SDK's flags:\n  {sdk.strip()}\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if "-h" in args or "--help" in args:
        sys.stdout.write(help_text())
        return 0
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        settings = HandlerSettings.from_env(os.environ)
    except SettingsError as exc:
        print(f"ccrelay handler: {exc}", file=sys.stderr)
        return 2
    logging.getLogger("ccrelay.handler").info(
        "handler starting: ollama=%s redis=%s models=%s concurrency=%d",
        settings.ollama_host,
        settings.redis_url_display,
        ",".join(settings.allowed_models),
        settings.concurrency,
    )
    # The SDK logs every job's output at DEBUG, its default level: user code in the
    # platform's logs. Quiet it unless the deployment asks for it.
    os.environ.setdefault("RUNPOD_LOG_LEVEL", "INFO")
    from ccrelay_handler.runpod_handler import start

    start(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
