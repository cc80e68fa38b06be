"""Forecaster model tests on a small real slice of the demo shop (20 products + one that sold on two days).

The fixture was cut from data/demo/online_retail.parquet (daily totals per product), so these tests read nothing
outside tests/. Each trains a tiny model in about a second on one thread.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("holidays")

from local_models.forecaster import Config, Forecaster  # noqa: E402
from local_models.forecaster.data import build_panel, load_daily_sales  # noqa: E402
from local_models.forecaster.evaluate import mase_scale, metrics, seasonal_naive  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "sales_slice.csv"
TWO_SALES_PRODUCT = "16202A"


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def sales():
    return load_daily_sales(FIXTURE)


def small_config(**overrides) -> Config:
    base = dict(hidden=32, max_epochs=15, patience=4, synthetic_aggregates=16, batch_size=256, seed=0)
    base.update(overrides)
    return Config.for_granularity("W", **base)


@pytest.fixture(scope="module")
def fitted(sales):
    torch.set_num_threads(1)
    return Forecaster.fit(sales, small_config(), granularity="W", device="cpu")


def test_fixture_is_the_expected_slice(sales):
    panel = build_panel(sales, "W")
    assert len(panel.periods) == 52  # partial first and last weeks dropped
    assert panel.periods[0].dayofweek == 0  # weeks are labelled by their Monday
    assert (panel.values[panel.index[f"product:{TWO_SALES_PRODUCT}"]] > 0).sum() == 2


def test_smoke_two_steps(sales):
    fc = Forecaster.fit(sales, small_config(max_epochs=2, patience=2), granularity="W", backtest=False, device="cpu")
    res = fc.forecast("shop", 4)
    assert res.method == "global_model"
    assert len(res.periods) == 4
    q = np.array([res.quantiles["p10"], res.quantiles["p50"], res.quantiles["p90"]])
    assert np.all(np.isfinite(q)) and np.all(q >= 0)
    assert np.all(q[0] <= q[1]) and np.all(q[1] <= q[2])


def test_same_seed_same_forecast(sales):
    cfg = small_config(max_epochs=4)
    a = Forecaster.fit(sales, cfg, granularity="W", backtest=False, device="cpu")
    b = Forecaster.fit(sales, cfg, granularity="W", backtest=False, device="cpu")
    keys = [k for k in a.panel.keys if k != f"product:{TWO_SALES_PRODUCT}"]
    np.testing.assert_array_equal(a.predict_keys(keys), b.predict_keys(keys))


def test_save_load_same_forecast(fitted, tmp_path):
    path = fitted.save(tmp_path / "fc")
    assert path.name == "forecaster.pt"
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {"format_version", "config", "state_dict", "id_maps", "metrics", "trained_at"}
    assert "backtest" in ckpt["metrics"]
    loaded = Forecaster.load(tmp_path / "fc", device="cpu")
    keys = [k for k in fitted.panel.keys if k != f"product:{TWO_SALES_PRODUCT}"]
    np.testing.assert_allclose(loaded.predict_keys(keys), fitted.predict_keys(keys), rtol=0, atol=1e-5)
    assert loaded.forecast("shop").to_dict() == fitted.forecast("shop").to_dict()
    assert not list((tmp_path / "fc").glob("*.tmp"))  # atomic writes left no temp files


def test_beats_seasonal_naive_on_real_slice(fitted):
    """The stored backtest (last 8 weeks, model fitted before them) against naive from the same origin."""
    product = fitted.metrics["backtest"]["levels"]["product"]
    assert product["model"]["n_series"] >= 19
    assert product["model"]["mase"] < 0.9 * product["seasonal_naive"]["mase"]
    assert product["model"]["wape"] < product["seasonal_naive"]["wape"]


def test_backtest_uses_only_the_past(sales, fitted):
    """Independent check: recompute seasonal-naive on the held-out weeks with the evaluate helpers."""
    panel = build_panel(sales, "W")
    bt = fitted.metrics["backtest"]
    T = len(panel.periods)
    rows = [panel.index[k] for k in panel.keys if k in bt["per_series_mase"] and k.startswith("product:")]
    hist, act = panel.values[rows, : T - 8], panel.values[rows, T - 8 :]
    m = metrics(act, seasonal_naive(hist, 8, 1), mase_scale(hist, (hist > 0).argmax(1), 1))
    assert m["mase"] == pytest.approx(bt["levels"]["product"]["seasonal_naive"]["mase"], rel=1e-6)
    assert bt["periods"][0] == str(panel.periods[T - 8].date())


def test_product_with_two_sales_gets_an_answer(fitted):
    res = fitted.forecast(TWO_SALES_PRODUCT, 4)
    assert res.method.startswith("sparse_history:scaled_shop_pattern")
    assert len(res.quantiles["p50"]) == 4
    assert all(v >= 0 for v in res.quantiles["p90"])
    assert any("selling weeks" in x for x in res.lacking)
    assert "not backtested" in res.backtest["text"]


def test_brand_new_product_gets_an_answer(fitted):
    res = fitted.forecast("product:NEW-MUG-001", 3)
    assert res.method == "new_product:launch_profile(shop)"
    assert res.last_period is None and res.change_vs_last_period is None
    assert len(res.quantiles["p10"]) == 3
    assert any("no sales history" in x for x in res.lacking)


def test_product_forecast_carries_evidence(fitted):
    pid = next(k for k in fitted.metrics["backtest"]["per_series_mase"] if k.startswith("product:"))
    res = fitted.forecast(pid, 8).to_dict()
    assert res["method"] == "global_model"
    assert "this model's MASE" in res["backtest"]["text"]
    assert res["last_period"]["period"] == "2011-11-28"
    # 52 complete weeks: the 8 weeks ahead each have the same week a year earlier (2010-12-06 onwards).
    assert res["change_vs_last_year"]["periods_compared"][0] == "2010-12-06"
    assert len(res["change_vs_last_year"]["periods_compared"]) == 8


def test_categories_and_bad_targets(sales):
    cats = {p: ("A" if i % 2 else "B") for i, p in enumerate(sorted(sales["product_id"].unique()))}
    fc = Forecaster.fit(sales, small_config(max_epochs=2, patience=2), granularity="W", category_map=cats,
                        backtest=False, device="cpu")
    assert fc.forecast("category:A", 2).method == "global_model"
    with pytest.raises(ValueError, match="unknown category"):
        fc.forecast("category:Z")
    with pytest.raises(ValueError, match="horizon"):
        fc.forecast("shop", 99)


def test_daily_granularity(sales):
    cfg = Config.for_granularity("D", hidden=32, max_epochs=2, patience=2, synthetic_aggregates=4, batch_size=512)
    fc = Forecaster.fit(sales, cfg, granularity="D", backtest=False, device="cpu")
    res = fc.forecast("shop", 7)
    assert len(res.periods) == 7 and res.granularity == "D"


# ---------------------------------------------------------------- prices


def test_fixture_prices_feed_the_model(fitted):
    """The slice carries revenue, so each product has a price per week and the default model uses it."""
    assert fitted.config.use_price
    rows = [i for i, k in enumerate(fitted.panel.keys) if k.startswith("product:")]
    assert np.isfinite(fitted.panel.price[rows]).any(axis=1).all()
    assert np.isnan(fitted.panel.price[fitted.panel.index["shop"]]).all()  # aggregates have no price


def test_price_level_is_causal_and_ignores_one_period_blips():
    from local_models.forecaster.data import price_level

    price = np.array([[np.nan, 2, 2, 1, 2, 2, np.nan, 3, 3, 3]], dtype=np.float64)
    level = np.exp(price_level(price))[0]
    assert np.isnan(level[0])
    np.testing.assert_allclose(level[1:], [2, 2, 2, 2, 2, 2, 2, 3, 3])  # the blip to 1 is ignored, the move to 3 kept
    for end in range(1, price.shape[1] + 1):
        np.testing.assert_array_equal(price_level(price[:, :end]), price_level(price)[:, :end])


def test_window_prices_are_relative_to_the_current_level(sales):
    from local_models.forecaster.data import make_windows

    panel = build_panel(sales, "W")
    row = panel.index["product:22720"]
    T = len(panel.periods)
    cal = np.zeros((T + 8, 0), np.float32)
    w = make_windows(panel, np.array([row]), np.array([T]), 16, 8, T, cal)
    assert np.all(w.fprice == 0)  # beyond the data the current price holds
    lvl = panel.log_price_level()[row]
    np.testing.assert_allclose(w.price[0], np.where(w.hist_mask[0] > 0, lvl[T - 16 :] - lvl[T - 1], 0), atol=1e-6)


def _network_products(fc):
    return [k for k in fc.panel.keys if k.startswith("product:") and k != f"product:{TWO_SALES_PRODUCT}"]


def test_discount_never_lowers_and_rise_never_raises_the_forecast(fitted):
    """Guaranteed by construction (elasticity >= 0), so it must hold for every product, whatever its history."""
    for key in _network_products(fitted):
        base = fitted.forecast(key, 8).quantiles
        cut = fitted.forecast(key, 8, price=-0.2)
        rise = fitted.forecast(key, 8, price=0.2).quantiles
        for name in ("p10", "p50", "p90"):
            assert all(c >= b for c, b in zip(cut.quantiles[name], base[name])), (key, name)
            assert all(r <= b for r, b in zip(rise[name], base[name])), (key, name)
        assert cut.price_scenario["elasticity"] >= 0
        assert cut.price_scenario["p50_at_current_price"] == base["p50"]
        assert "model's estimate" in cut.price_scenario["text"] and "validated on" in cut.price_scenario["text"]


def test_no_price_change_is_the_plain_forecast(fitted):
    key = _network_products(fitted)[0]
    plain = fitted.forecast(key, 4).to_dict()
    assert plain["price_scenario"] is None
    assert fitted.forecast(key, 4, price=0.0).to_dict() == plain
    assert fitted.forecast(key, 4, price=[0.0] * 4).to_dict() == plain


def test_price_scenario_is_deterministic_and_survives_save_load(sales, fitted, tmp_path):
    cfg = small_config(max_epochs=4)
    a = Forecaster.fit(sales, cfg, granularity="W", backtest=False, device="cpu")
    b = Forecaster.fit(sales, cfg, granularity="W", backtest=False, device="cpu")
    key = _network_products(a)[0]
    assert a.forecast(key, 8, price=-0.3).to_dict() == b.forecast(key, 8, price=-0.3).to_dict()
    fitted.save(tmp_path / "fc")
    loaded = Forecaster.load(tmp_path / "fc", device="cpu")
    np.testing.assert_allclose(loaded.panel.price, fitted.panel.price)
    got, want = loaded.forecast(key, 8, price=-0.3), fitted.forecast(key, 8, price=-0.3)
    np.testing.assert_allclose(got.quantiles["p50"], want.quantiles["p50"], rtol=1e-5, atol=1e-3)
    assert got.price_scenario["elasticity"] == pytest.approx(want.price_scenario["elasticity"], abs=1e-4)


def test_price_change_errors(sales, fitted):
    with pytest.raises(ValueError, match="one product"):
        fitted.forecast("shop", 4, price=-0.2)
    with pytest.raises(ValueError, match="too few selling"):
        fitted.forecast(TWO_SALES_PRODUCT, 4, price=-0.2)
    with pytest.raises(ValueError, match="between -0.9"):
        fitted.forecast(_network_products(fitted)[0], 4, price=-1.0)
    no_prices = sales.drop(columns=["revenue", "price"])
    fc = Forecaster.fit(no_prices, small_config(max_epochs=2, patience=2), granularity="W", backtest=False,
                        device="cpu")
    assert not fc.config.use_price and fc.panel.price is None
    with pytest.raises(ValueError, match="trained without prices"):
        fc.forecast(_network_products(fc)[0], 4, price=-0.2)


def test_prices_do_not_change_the_forecast_at_the_current_price(sales):
    """The trunk trains as without prices and the elasticity is fitted afterwards, so switching prices on can add
    what-if answers but cannot change (or hurt) the plain forecast."""
    cfg = small_config(max_epochs=4)
    with_p = Forecaster.fit(sales, cfg, granularity="W", backtest=False, device="cpu")
    without = Forecaster.fit(sales, small_config(max_epochs=4, use_price=False), granularity="W", backtest=False,
                             device="cpu")
    assert with_p.config.use_price and not without.config.use_price
    keys = [k for k in with_p.panel.keys if k != f"product:{TWO_SALES_PRODUCT}"]
    np.testing.assert_array_equal(with_p.predict_keys(keys), without.predict_keys(keys))
    fit = with_p.metrics["fit"]["final"]
    assert fit["val_loss"] == without.metrics["fit"]["final"]["val_loss"]
    assert np.isfinite(fit["val_loss_prices_charged"])
