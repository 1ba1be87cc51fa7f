"""Shared fixtures: one sandbox (moto server + App Runner emulator) per test session, reset per test."""

from __future__ import annotations

import os

import pytest

# Tests never read the developer's AWS configuration.
for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
    os.environ.pop(name, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

from tests.helpers import DEPLOY_SECONDS  # noqa: E402


@pytest.fixture(scope="session")
def sandbox():
    from runbook_sandbox import Sandbox

    with Sandbox(deploy_seconds=DEPLOY_SECONDS) as box:
        yield box


@pytest.fixture
def world(sandbox, monkeypatch, tmp_path):
    """Load a scenario into the shared sandbox and point boto3 at it."""
    from runbook_sandbox import load_scenario

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))

    def load(name_or_path: str = "field-report"):
        sandbox.load(load_scenario(name_or_path))
        for key, value in sandbox.env.items():
            monkeypatch.setenv(key, value)
        return sandbox

    return load
