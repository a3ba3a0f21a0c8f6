"""Session-wide fixtures shared by the contract suite and the backend tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_cluster import throwaway_cluster
from tests.servers import REDIS_URL, reachable, unavailable

# -- Redis (backends/redis.py) ------------------------------------------------


@pytest.fixture(scope="session")
def redis_server_url() -> str:
    """The machine's Redis server (``SESSIONSTORE_TEST_REDIS_URL``), checked once."""
    if not reachable(REDIS_URL):
        unavailable(f"no Redis server answers at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_cluster_url() -> Iterator[str]:
    """A throwaway three-master Redis Cluster for the whole test run."""
    with throwaway_cluster() as ports:
        yield f"redis+cluster://127.0.0.1:{ports[0]}"
