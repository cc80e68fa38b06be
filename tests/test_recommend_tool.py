"""recommend_products and the recommender training job, on a shop made from a real slice of Amazon Beauty."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import tools.training as training
from tools.base import ToolInputError
from tools.importer import import_file
from tools.recommend_products import SPEC
from tools.workspace import Shop

SLICE = Path(__file__).parent / "fixtures" / "beauty_slice.txt"  # "user item item …" in purchase order


@pytest.fixture(scope="module")
def rec_shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    import torch

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("rec")
    lines = ["order_id,product_id,title,quantity,unit_price,ordered_at,customer_id"]
    start = dt.datetime(2024, 1, 1)
    for u, row in enumerate(SLICE.read_text().splitlines()[:300]):
        user, *items = row.split()
        for j, item in enumerate(items):
            when = start + dt.timedelta(days=j, minutes=u)
            lines.append(f"o{u}-{j},B{item},Beauty item {item},1,9.99,{when:%Y-%m-%d %H:%M:%S},u{user}")
    lines.append("o-new,B6,Beauty item 6,1,9.99,2024-01-01 00:00:00,newbie")  # one purchase only
    f = tmp / "orders.csv"
    f.write_text("\n".join(lines) + "\n")
    shop = Shop.create(tmp / "shop")
    import_file(shop, f, "orders")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "RECOMMENDER_BUDGET_S", 20)  # a test needs only a few epochs
        reports = training.train(shop, "recommender")
    assert reports[0].name == "recommender" and (shop.models_dir / "recommender" / "copurchase.npz").exists()
    return shop


def test_customer_recommendations_have_reasons_and_skip_what_was_bought(rec_shop):
    r = SPEC.run(rec_shop, customer_id="u6", k=5)
    rows = r.data["recommendations"]
    assert len(rows) == 5 and all(row["reason"] for row in rows)
    assert not {"B33", "B37", "B39", "B44", "B46"} & {row["product_id"] for row in rows}  # u6's own purchases
    assert r.evidence[0].source == "model:recommender" and "validation" in r.evidence[0].detail
    # Coverage and popularity percentile stand beside the most-popular list's on the same split.
    from local_models.recommender import Recommender

    popular = Recommender.load(rec_shop.models_dir / "recommender").metrics["valid_popular"]
    assert 0 < popular["coverage@10"] <= 1 and 0 <= popular["pop_percentile"] <= 100
    assert f"the most-popular list on the same split: ndcg@10 {round(popular['ndcg@10'], 4)}" in r.evidence[0].detail
    again = SPEC.run(rec_shop, customer_id="u6", k=50, include_bought=True)
    assert {row["product_id"] for row in again.data["recommendations"]} & {"B33", "B37", "B39", "B44", "B46"}


def test_short_history_falls_back_to_popular_and_says_so(rec_shop):
    r = SPEC.run(rec_shop, customer_id="newbie", k=3)
    assert "cold start" in r.summary or all("sequence" in x["reason"] or "bought with" in x["reason"]
                                            for x in r.data["recommendations"])


def test_bought_together_counts_are_real(rec_shop):
    r = SPEC.run(rec_shop, product_ids=["B39"], k=5)
    rows = r.data["recommendations"]
    assert rows and all(row["customers_together"] >= 1 for row in rows)
    top = rows[0]
    assert f"by {top['customers_together']:,} customers" in top["reason"]
    with rec_shop.connect(read_only=True) as con:  # check the top count against the orders table
        n = con.execute("""SELECT count(DISTINCT a.customer_id) FROM orders a JOIN orders b USING (customer_id)
                           WHERE a.product_id = 'B39' AND b.product_id = ?""", [top["product_id"]]).fetchall()[0][0]
    assert n == top["customers_together"]


def test_errors_say_how_to_find_valid_ids(rec_shop, small_shop):
    with pytest.raises(ToolInputError, match="No customer 'nobody'.*customer_segments"):
        SPEC.run(rec_shop, customer_id="nobody")
    with pytest.raises(ToolInputError, match="sales_overview"):
        SPEC.run(rec_shop, product_ids=["NOT-A-PRODUCT"])
    with pytest.raises(ToolInputError, match="exactly one of"):
        SPEC.run(rec_shop, customer_id="u6", product_ids=["B39"])
    with pytest.raises(ToolInputError, match="shopkeeper train recommender"):
        SPEC.run(small_shop, customer_id="c1")
    with pytest.raises(ToolInputError, match="no product categories"):
        SPEC.run(rec_shop, category="lipstick")
