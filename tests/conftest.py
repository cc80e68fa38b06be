"""Shared fixtures. No test touches the network or the user's real folders."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CLOSED_PORT_URL = "http://127.0.0.1:9/v1"  # the discard port: nothing listens, connections fail at once


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point XDG folders at a temp dir, drop API keys, and aim any provider at a closed local port."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (("XDG_DATA_HOME", "data"), ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache")):
        monkeypatch.setenv(var, str(home / sub))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SHOPKEEPER_SHOP", "SHOPKEEPER_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SHOPKEEPER_PROVIDER__BASE_URL", CLOSED_PORT_URL)
    return home


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture
def shop(tmp_path: Path):
    from tools.workspace import Shop

    return Shop.create(tmp_path / "shop")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Fail any attempt to open a non-loopback connection; records every attempt."""
    attempts: list[tuple] = []
    real_connect = socket.socket.connect

    def guarded(self, address):  # noqa: ANN001 - socket's own signature
        attempts.append(address)
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "localhost", "::1"):
            raise OSError(f"network access blocked in tests: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    return attempts
