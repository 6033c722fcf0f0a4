"""Benchmarks, run with ``python -m bench [NAME ...] [--quick]`` (default: every benchmark).

- ``gateway``: the Anthropic gateway's added latency, throughput, streaming, memory and start-up
  (`bench.gateway`);
- ``handler_cache``: a cache hit inside the worker's handler (`bench.handler_cache`).
"""
