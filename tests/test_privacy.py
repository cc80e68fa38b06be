"""What leaves the machine: redaction, pseudonyms, the audit log, and refusing remote providers offline."""

from __future__ import annotations

import json
import stat

import pytest

from assistant.api import Assistant
from assistant.config import load_settings
from assistant.privacy import AuditLog, Pseudonymizer, redact
from tests.support.fake_openai import FakeOpenAI
from tools.errors import ConfigError
from tools.importer import import_file
from tools.workspace import Shop


@pytest.mark.parametrize("text, expected", [
    ("write to alice.smith+shop@example.co.uk today", "write to [EMAIL] today"),
    ("call 13812345678 or +86 138 1234 5678", "call [PHONE] or [PHONE]"),
    ("UK office +44 20 7946 0958", "UK office [PHONE]"),
    ("id 11010519491231002X", "id [ID]"),            # valid checksum
    ("id 110105194912310021", "id 110105194912310021"),     # checksum wrong: not an id
    ("card 4111 1111 1111 1111", "card [CARD]"),             # Luhn-valid test card
    ("order 4111 1111 1111 1112", "order 4111 1111 1111 1112"),  # fails Luhn: left alone
    ("ship to 221 Baker Street please", "ship to [ADDRESS] please"),
    ("寄到北京市朝阳区建国路88号", "寄到[ADDRESS]"),
])
def test_redaction(text, expected):
    assert redact(text) == expected


def test_pseudonyms_are_stable_and_reversible():
    p = Pseudonymizer(["17850", "13047"])
    hidden = p.hide("customer 17850 and 13047, then 17850 again; 178500 is not an id")
    assert hidden == "customer CUST-0001 and CUST-0002, then CUST-0001 again; 178500 is not an id"
    assert p.reveal(hidden) == "customer 17850 and 13047, then 17850 again; 178500 is not an id"


PLANTED = ["17850", "13047", "12583", "14527", "15311"]
PII = ["alice@example.com", "13812345678", "4111 1111 1111 1111", "11010519491231002X"]


@pytest.fixture
def private_shop(tmp_path):
    lines = ["order_id,product_id,title,quantity,unit_price,ordered_at,customer_id,country"]
    for i, cid in enumerate(PLANTED):
        title = f"Gift card for {PII[i % len(PII)]}"  # personal data where it should never be
        lines.append(f"{1000 + i},P{i},{title},{i + 1},2.50,2024-01-{10 + i} 10:00:00,{cid},United Kingdom")
    f = tmp_path / "orders.csv"
    f.write_text("\n".join(lines) + "\n")
    shop = Shop.create(tmp_path / "shop")
    import_file(shop, f, "orders")
    return shop


def test_remote_model_sees_no_customer_id_or_personal_data(private_shop):
    script = [
        {"tool_calls": [("query_data", {"sql": "SELECT customer_id, p.title, sum(quantity) AS units FROM orders "
                                               "JOIN products p USING (product_id) GROUP BY ALL ORDER BY units "
                                               "DESC"})]},
        {"content": "Your best customer is CUST-0002 with 5 units."},  # 17850 (in the question) is 0001
    ]
    with FakeOpenAI(script) as server:
        settings = load_settings(provider={"name": "openai", "base_url": server.base_url, "api_key": "sk-test-secret",
                                           "model": "fake", "timeout": 10, "max_retries": 0})
        bot = Assistant.open(str(private_shop.path), settings=settings)
        answer = bot.ask(f"Who bought most? Customer 17850 wrote from {PII[0]}.")
    sent = b"\n".join(server.raw_bodies).decode()
    for value in PLANTED + PII:
        assert value not in sent, f"{value} reached the remote model"
    assert "CUST-0001" in sent and "[EMAIL]" in sent
    # the answer shown locally has the real id back, and the tool really ran on real data
    assert "15311" in answer.text and answer.grounded
    assert answer.tool_calls[0].ok and answer.tool_calls[0].result["data"]["rows"][0]["customer_id"] == "15311"
    # the audit log holds every request the server received, and never the key
    audit = AuditLog(private_shop.audit_path)
    entries = audit.entries()
    assert len(entries) == len(server.requests) == 2
    assert [e["body"] for e in entries] == server.requests
    assert "sk-test-secret" not in private_shop.audit_path.read_text()
    assert stat.S_IMODE(private_shop.audit_path.stat().st_mode) == 0o600


def test_offline_refuses_remote_providers_before_connecting(private_shop, no_network):
    settings = load_settings(privacy="local-only", provider={"name": "openai", "base_url": "https://api.example.com/v1",
                                                             "api_key": "sk-x"})
    with pytest.raises(ConfigError, match="local-only"):
        Assistant.open(str(private_shop.path), settings=settings)
    assert no_network == []


def test_cli_offline_flag(private_shop, no_network, monkeypatch):
    from typer.testing import CliRunner

    from assistant.cli import app

    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    result = CliRunner().invoke(app, ["ask", "hi", "--offline", "--provider", "openai", "--shop",
                                      str(private_shop.path)])
    assert result.exit_code == 1 and "local-only" in result.output
    assert no_network == []


def test_audit_command_lists_requests(private_shop):
    from typer.testing import CliRunner

    from assistant.cli import app

    AuditLog(private_shop.audit_path).append({"time": "2024-01-01T00:00:00", "method": "POST",
                                              "url": "https://api.example.com/v1/chat/completions", "bytes": 12,
                                              "body": {"model": "m", "messages": [{"role": "user",
                                                                                   "content": "hi"}]}})
    out = CliRunner().invoke(app, ["audit", "--shop", str(private_shop.path), "--json"]).stdout
    assert json.loads(out)[0]["url"].endswith("/chat/completions")
    text = CliRunner().invoke(app, ["audit", "--shop", str(private_shop.path)]).output
    assert "api.example.com" in text and "1 request" in text


def test_shop_folder_history_and_audit_are_owner_only(private_shop):
    from assistant.testing import ScriptedChatModel

    bot = Assistant.open(str(private_shop.path), chat_model=ScriptedChatModel().enqueue("Hello."))
    bot.ask("hi")
    AuditLog(private_shop.audit_path).append({"time": "t", "url": "u", "body": {}})
    assert stat.S_IMODE(private_shop.path.stat().st_mode) == 0o700
    for path in (private_shop.path / "history.sqlite", private_shop.audit_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
