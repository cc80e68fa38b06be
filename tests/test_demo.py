"""The bundled demo shop, built from the committed data exactly as `shopkeeper demo` builds it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant.cli import app


@pytest.fixture(scope="module")
def demo_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "shop"
    result = CliRunner().invoke(app, ["demo", "--shop", str(path), "--no-chat"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return path


def test_every_order_line_is_accounted_for(demo_shop: Path):
    status = json.loads(CliRunner().invoke(app, ["status", "--shop", str(demo_shop), "--json"]).stdout)
    orders = next(i for i in status["imports"] if i["kind"] == "orders")
    assert orders["records"] == 541_909
    assert orders["inserted"] + orders["already_present"] + orders["quarantined"] == 541_909
    assert abs(status["counts"]["products"] - 4_070) <= 10
    assert status["orders"]["first"].startswith("2010-12-01")
    assert status["orders"]["last"].startswith("2011-12-09")
    assert status["orders"]["by_status"]["cancelled"] == 9_288  # the published number of cancellation lines


def test_review_collections_are_separate_and_counted(demo_shop: Path):
    status = json.loads(CliRunner().invoke(app, ["status", "--shop", str(demo_shop), "--json"]).stdout)
    by_name = {c["collection"]: c for c in status["review_collections"]}
    assert set(by_name) == {"womens-clothing-en", "online-shopping-zh"}
    assert by_name["online-shopping-zh"]["reviews"] == 50_257 and by_name["online-shopping-zh"]["language"] == "zh"
    en = by_name["womens-clothing-en"]
    assert en["language"] == "en" and en["with_rating"] == en["reviews"]
    reviews = next(i for i in status["imports"] if i["kind"] == "reviews")
    assert reviews["records"] == 18_865 + 50_257
    assert reviews["inserted"] + reviews["quarantined"] == reviews["records"]


def test_reviews_never_link_to_the_retailers_products(demo_shop: Path):
    from tools.workspace import Shop, scalar

    with Shop.open(demo_shop).connect(read_only=True) as con:
        linked = scalar(con, "SELECT count(*) FROM reviews r JOIN products p USING (product_id)")
    assert linked == 0


def test_demo_is_idempotent(demo_shop: Path):
    result = CliRunner().invoke(app, ["demo", "--shop", str(demo_shop), "--no-chat"])
    assert result.exit_code == 0
    assert result.output.count("already there") == 3
