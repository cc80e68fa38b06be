"""The command line, driven in-process with Typer's runner and, for start-up and locking, in subprocesses."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from assistant import __version__
from assistant.cli import app

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_version_and_help():
    assert invoke("--version").output.strip() == f"shopkeeper {__version__}"
    out = invoke("--help").output
    for command in ("demo", "import", "status", "quarantine", "train", "ask", "chat"):
        assert command in out
    assert "--map" in invoke("import", "--help").output


def test_import_then_status_json(tmp_path: Path, fixtures: Path):
    shop = str(tmp_path / "myshop")
    result = invoke("import", str(fixtures / "orders_reasons.csv"), "--kind", "orders", "--shop", shop)
    assert result.exit_code == 0
    assert "17 records: 5 added, 0 already in the shop, 12 quarantined." in result.output
    assert "InvoiceNo → order_id" in result.output
    result = invoke("import", str(fixtures / "orders_reasons.csv"), "--kind", "orders", "--shop", shop)
    assert "already imported" in result.output
    status = json.loads(invoke("status", "--shop", shop, "--json").output)
    assert status["counts"]["orders"] == 5
    assert status["imports"] == [{"kind": "orders", "files": 1, "records": 17, "inserted": 5, "already_present": 0,
                                  "quarantined": 12}]
    assert status["orders"]["first"] == "2010-12-01 08:26:00"


def test_import_json_report(tmp_path: Path, fixtures: Path):
    result = invoke("import", str(fixtures / "orders_gbk.csv"), "-k", "orders", "--shop", str(tmp_path / "s"),
                    "--json")
    report = json.loads(result.stdout)
    assert report["encoding"] == "gb18030" and report["accepted"] == 4 and report["records"] == 4


def test_named_shop_lives_in_the_data_dir(isolated_env: Path, fixtures: Path):
    invoke("import", str(fixtures / "products.csv"), "--kind", "products", "--shop", "mugs")
    assert (isolated_env / "data" / "shopkeeper" / "shops" / "mugs" / "shop.duckdb").exists()


def test_bad_input_gives_one_line_and_exit_1(tmp_path: Path, fixtures: Path):
    result = runner.invoke(app, ["import", str(tmp_path / "missing.csv"), "--kind", "orders",
                                 "--shop", str(tmp_path / "s")])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = runner.invoke(app, ["status", "--shop", str(tmp_path / "nothing-here")])
    assert result.exit_code == 1 and "shopkeeper demo" in result.output
    result = runner.invoke(app, ["import", str(fixtures / "products.csv"), "--kind", "products", "--map", "oops",
                                 "--shop", str(tmp_path / "s")])
    assert result.exit_code == 1 and "COLUMN=FIELD" in result.output


def test_usage_errors_exit_2(fixtures: Path):
    assert runner.invoke(app, ["import", str(fixtures / "products.csv"), "--kind", "invoices"]).exit_code == 2
    assert runner.invoke(app, ["nonsense"]).exit_code == 2


def test_train_and_chat_need_a_shop(tmp_path: Path):
    for command in (["train"], ["chat"]):
        result = runner.invoke(app, [*command, "--shop", str(tmp_path / "none")])
        assert result.exit_code == 1 and "No shop at" in result.output


def test_train_unknown_model_is_a_clear_error(small_shop):
    result = runner.invoke(app, ["train", "crystal-ball", "--shop", str(small_shop.path)])
    assert result.exit_code == 1 and "choose from analytics, forecaster, recommender, reviews or all" in result.output


def test_quarantine_export_neutralises_formulas(tmp_path: Path):
    shop = str(tmp_path / "s")
    f = tmp_path / "evil.csv"
    f.write_text('order,sku,qty,price,date\n=HYPERLINK("http://x"),A,1,2.0,2024-01-01\n'
                 "1,@SUM(A1),zero,2.0,2024-01-01\n")
    invoke("import", str(f), "--kind", "orders", "--shop", shop)
    shown = invoke("quarantine", "--shop", shop)
    assert "bad_number" in shown.output
    out = tmp_path / "q.csv"
    assert "Wrote 1 quarantined" in invoke("quarantine", "--shop", shop, "--export", str(out)).output
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert rows[0]["reason"] == "bad_number" and rows[0]["value"] == "zero"
    # the product id cell inside the record JSON does not start the cell, but a value that would is neutralised
    from tools.export import neutralise

    assert neutralise('=HYPERLINK("x")') == "'=HYPERLINK(\"x\")"
    assert neutralise("@SUM(A1)") == "'@SUM(A1)" and neutralise("+1-2") == "'+1-2"
    assert neutralise("-3.5") == "-3.5" and neutralise(-3) == -3 and neutralise("plain") == "plain"


def test_config_shows_env_and_masks_key(monkeypatch: pytest.MonkeyPatch, isolated_env: Path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    cfg = isolated_env / "config" / "shopkeeper" / "config.toml"
    cfg.parent.mkdir(parents=True)
    cfg.write_text('language = "zh"\n[provider]\nmodel = "deepseek-chat"\ntimeout = 30\n')
    monkeypatch.setenv("SHOPKEEPER_PROVIDER__TIMEOUT", "12")
    out = invoke("config").output
    data = json.loads(out)
    assert data["language"] == "zh" and data["provider"]["model"] == "deepseek-chat"
    assert data["provider"]["timeout"] == 12.0  # the environment beats the file
    assert "sk-secret-value" not in out and data["provider"]["api_key"] == "**********"


def test_invalid_config_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SHOPKEEPER_LANGUAGE", "klingon")
    result = runner.invoke(app, ["config"])
    assert result.exit_code == 1 and "language" in result.output


def test_locked_shop_says_who_holds_it(tmp_path: Path, fixtures: Path):
    from tools.errors import ShopLockedError
    from tools.workspace import Shop

    shop = Shop.create(tmp_path / "s")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, sys, time
        con = duckdb.connect({str(shop.db_path)!r})
        print("ready", flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(ShopLockedError, match=f"PID {holder.pid}"):
            with shop.connect():
                pass
        result = runner.invoke(app, ["status", "--shop", str(shop.path)])
        assert result.exit_code == 1 and "in use by another process" in result.output
    finally:
        holder.communicate("")
    with shop.connect():  # released again once the other process is gone
        pass


def test_help_does_not_import_heavy_libraries():
    code = ("import sys, assistant.cli; heavy = [m for m in ('duckdb', 'pyarrow', 'torch', 'pydantic', 'textual', "
            "'langchain_core') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
