"""A RunPod serverless endpoint as a backend (one folder: settings, jobs, streams, health)."""

from ccrelay.backends.runpod.backend import RunPodBackend, RunPodSettings

__all__ = ["RunPodBackend", "RunPodSettings"]
