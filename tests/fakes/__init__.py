"""One fake per real service, each a real aiohttp server on 127.0.0.1.

harness.py is what they share (how a fake is served, `Recorded`, `Reply`); then one module
(or package) per service: ollama/, openai_compat.py (OpenAI, vLLM, LiteLLM), cerebras.py,
providers.py (scripted OpenAI and Anthropic), runpod_jobs.py (a queue endpoint; with
runpod_outputs.py and runpod_workers.py, the worker-facing job API a real runpod SDK worker
polls), runpod_balancer/ (a load-balancing endpoint: RunPod's load balancer in front of real
worker servers), runpod_rest.py (the management REST API), and nvidia_smi.py (a command, not a
server: the one query the worker makes).
"""
