"""``python -m ccrelay_handler [runpod SDK flags]``: the RunPod serverless worker entry point.

Reads the environment once into ``HandlerSettings`` and starts the SDK, which reads its own
flags (``--rp_serve_api``, ``--rp_api_port``, ``--rp_api_host``, ``--rp_log_level``...).
"""

from __future__ import annotations

import logging
import os
import sys

from ccrelay_handler.errors import SettingsError
from ccrelay_handler.runpod_handler import start
from ccrelay_handler.settings import HandlerSettings


def main() -> int:
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
    start(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
