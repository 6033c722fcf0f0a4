"""The fake RunPod REST API with the network volume every deploy test's serverless.yml names."""

from __future__ import annotations

import pytest

from tests.fakes.runpod_rest import FakeRunPod


@pytest.fixture
def runpod(runpod_rest_server: FakeRunPod) -> FakeRunPod:
    runpod_rest_server.volumes["vol-existing"] = {
        "id": "vol-existing",
        "name": "ccrelay-models",
        "size": 100,
        "dataCenter": "EU-RO-1",
        "type": "STANDARD",
    }
    return runpod_rest_server
