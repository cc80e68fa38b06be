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


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Fail any attempt to open a non-loopback connection (every test); records every attempt."""
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


SMALL_ORDERS = """order_id,product_id,title,quantity,unit_price,ordered_at,customer_id,country
1001,MUG-BLUE,Blue mug,2,10.00,2024-01-05 10:00:00,c1,United Kingdom
1001,MUG-RED,Red mug,1,12.50,2024-01-05 10:00:00,c1,United Kingdom
1002,MUG-BLUE,Blue mug,3,10.00,2024-01-20 12:00:00,c2,France
1003,TEAPOT,Teapot,1,30.00,2024-02-03 09:00:00,c1,United Kingdom
1004,MUG-BLUE,Blue mug,5,10.00,2024-02-10 15:30:00,c3,Germany
C1005,MUG-RED,Red mug,-1,12.50,2024-02-11 08:00:00,c2,France
1006,POST,POSTAGE,1,5.00,2024-02-12 08:00:00,c3,Germany
"""


@pytest.fixture
def small_shop(tmp_path: Path):
    """A two-month shop with figures small enough to check by hand (see SMALL_ORDERS).

    January: revenue 2*10 + 12.5 + 3*10 = 62.50 in 2 orders. February (net of the cancelled red mug):
    30 + 50 - 12.5 + 5 = 72.50 in 3 orders (1003, 1004, 1006).
    """
    from tools.importer import import_file
    from tools.workspace import Shop

    f = tmp_path / "orders.csv"
    f.write_text(SMALL_ORDERS, encoding="utf-8")
    shop = Shop.create(tmp_path / "small")
    import_file(shop, f, "orders")
    return shop
