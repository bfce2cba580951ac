"""Shared fixtures: compile once, deploy once per chain profile, snapshot and revert around
each test (titanoboa's anchor / ape's isolation)."""

from __future__ import annotations

import pytest

from alpsim.client import Alpsim
from alpsim.compiler import compile_contracts

PROFILES = ["bnb", "arbitrum"]


@pytest.fixture(scope="session")
def build():
    return compile_contracts()


@pytest.fixture(scope="session", params=PROFILES)
def deployed(request, build):
    """The whole system on the embedded devnet, once per profile for the session."""
    sim = Alpsim.launch(request.param, build=build)
    yield sim
    sim.stop()


@pytest.fixture
def sim(deployed):
    """The deployed system, reverted to its deployed state after the test."""
    snap = deployed.devnet.snapshot()
    yield deployed
    deployed.devnet.revert(snap)
