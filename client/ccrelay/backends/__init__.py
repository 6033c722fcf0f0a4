"""Built-in backends, one per file. Each registers through pyproject's `ccrelay.backends` group."""
