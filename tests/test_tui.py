"""The chat app, driven with Textual's Pilot and the scripted model: behaviour, not pixels."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest
from textual.widgets import Collapsible, DataTable, Input, ListView, Markdown, ProgressBar

from assistant.api import Assistant
from assistant.app import create_app
from assistant.app.widgets import BandChart, Evidence, ToolLine, Turn
from assistant.config import load_settings
from assistant.testing import ScriptedChatModel


def make_app(shop, model: ScriptedChatModel, **factory_kw):
    settings = load_settings()

    def factory(s):
        return Assistant(shop, model, s, provider_name="scripted")

    return create_app(shop, settings, factory)


async def ask(pilot, text: str) -> None:
    """Type a question, press Enter and wait until the answer has ended."""
    app = pilot.app
    await app._assistant_ready.wait()
    before = app.answers_finished
    prompt = app.query_one("#prompt", Input)
    prompt.focus()
    prompt.value = text
    await pilot.pause()
    await pilot.press("enter")
    for _ in range(600):  # generous: CI machines can be loaded
        await pilot.pause(0.05)
        if app.answers_finished > before:
            break
    else:
        raise AssertionError("the answer did not finish within 30 s")
    await pilot.pause()


async def wait_until(pilot, condition, seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached in time")


async def test_ask_shows_tool_lines_streamed_answer_and_evidence(small_shop):
    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "2024-02"})
    model.enqueue("February revenue was **72.50** from 3 orders.")
    app = make_app(small_shop, model)
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.focused is app.query_one("#prompt")
        await ask(pilot, "How were sales in February 2024?")
        turn = app.query_one(Turn)
        line = turn.query_one(ToolLine)
        assert line.title.startswith("✓ sales_overview(period='2024-02')")
        assert "72.50" in turn.answer_view.source
        evidence = turn.query_one(Evidence)
        assert "grounded" in evidence.title and "72.50" in evidence.query_one(Markdown).source
        # expanding the tool line shows its result as a table
        line.collapsed = False
        await pilot.pause()
        table = line.query_one(DataTable)
        assert table.row_count >= 4 and "revenue" in str(table.get_row_at(0))
        assert not app.query_one("#prompt", Input).has_class("-busy")


async def test_escape_cancels_and_restores_the_prompt(small_shop):
    class Slow(ScriptedChatModel):
        async def _astream(self, *args, **kwargs):
            await asyncio.sleep(30)
            yield  # pragma: no cover

    app = make_app(small_shop, Slow())
    async with app.run_test(size=(100, 30)) as pilot:
        await app._assistant_ready.wait()
        app.query_one("#prompt", Input).value = "Sales?"
        await pilot.press("enter")
        await wait_until(pilot, lambda: app._busy)
        assert app.query_one("#prompt", Input).has_class("-busy")
        await pilot.press("escape")
        await wait_until(pilot, lambda: app.answers_finished == 1)
        assert not app._busy and not app.query_one("#prompt", Input).has_class("-busy")
        assert "(cancelled)" in str(app.query_one(Turn).query_one(".note").render())
        assert app.assistant.history.conversations() == [] or all(
            c.turns == 0 for c in app.assistant.history.conversations())


async def test_provider_error_is_one_notification(small_shop):
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    model = ScriptedChatModel().enqueue_error(openai.APIConnectionError(request=request))
    app = make_app(small_shop, model)
    async with app.run_test(size=(100, 30)) as pilot:
        await ask(pilot, "Sales?")
        notes = list(app._notifications)
        assert len(notes) == 1 and "Can't reach the model" in notes[0].message
        assert "incomplete" in str(app.query_one(Turn).query(".note").last().render())


async def test_conversation_is_saved_listed_and_resumed(small_shop):
    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "2024-01"})
    model.enqueue("January revenue was 62.50.")
    app = make_app(small_shop, model)
    async with app.run_test(size=(120, 30)) as pilot:
        await ask(pilot, "January revenue?")
        thread = app.thread_id
        assert thread
        listing = app.query_one("#conversations", ListView)
        assert len(listing.children) == 1
        await app.action_new_conversation()
        assert len(app.query(Turn)) == 0
        await app.load_conversation(thread)
        await pilot.pause()
        turn = app.query_one(Turn)
        assert turn.question == "January revenue?" and "62.50" in turn.answer_view.source
        assert turn.query_one(ToolLine).title.startswith("✓ sales_overview")
        await app.run_command("/rename January check")
        await app.workers.wait_for_complete()
        assert app.assistant.history.conversations()[0].title == "January check"
        app.action_export()
        exported = small_shop.path / "exports" / f"conversation-{thread}.md"
        assert "January revenue was 62.50." in exported.read_text()


async def test_train_command_shows_progress_and_stays_responsive(small_shop, monkeypatch):
    import threading

    import tools.training as training

    release = threading.Event()

    def fake_job(shop, progress):
        progress(0.25, "step one")
        release.wait(5)
        progress(0.75, "step two")
        return training.TrainReport("forecaster", 0.1, {}, str(shop.models_dir / "forecaster"), "backtest ok")

    monkeypatch.setattr(training, "JOBS", {"forecaster": fake_job})
    app = make_app(small_shop, ScriptedChatModel().enqueue("Hello."))
    async with app.run_test(size=(100, 30)) as pilot:
        await app._assistant_ready.wait()
        await app.run_command("/train forecaster")
        bar = app.query_one("#train-progress", ProgressBar)
        await wait_until(pilot, lambda: bar.progress == 25)
        assert bar.display
        # the chat still answers while training runs
        await ask(pilot, "hi")
        assert "Hello." in app.query_one(Turn).answer_view.source
        release.set()
        await wait_until(pilot, lambda: not bar.display)
        assert any("Trained **forecaster**" in m.source for m in app.query(".system-message").results(Markdown))


async def test_forecast_result_renders_a_band_chart_and_rows_a_table():
    from assistant.app.widgets import result_view

    forecast = {"summary": "next 4 weeks", "kind": "forecast",
                "data": {"periods": ["2011-12-05", "2011-12-12", "2011-12-19", "2011-12-26"],
                         "quantiles": {"p10": [1, 2, 3, 2], "p50": [3, 4, 5, 4], "p90": [6, 7, 9, 8]}}}
    view = result_view(forecast)
    chart = view.query_one(BandChart) if view.children else None
    assert chart is None or chart.periods  # queried below once mounted

    from textual.app import App

    class Host(App):
        def compose(self):
            yield result_view(forecast)
            yield result_view({"summary": "rows", "kind": "table", "data": {"rows": [{"a": 1, "b": "x"}]}})

    async with Host().run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        chart = pilot.app.query_one(BandChart)
        text = str(chart.render())
        assert "█" in text and "░" in text and "12-05" in text
        assert pilot.app.query_one(DataTable).row_count == 1


async def test_help_and_unknown_command(small_shop):
    app = make_app(small_shop, ScriptedChatModel())
    async with app.run_test(size=(80, 24)) as pilot:
        await app._assistant_ready.wait()
        await app.run_command("/help")
        await pilot.pause()
        assert "/train" in list(app.query(".system-message").results(Markdown))[-1].source
        await app.run_command("/nonsense")
        await pilot.pause()
        assert "Unknown command /nonsense" in list(app._notifications)[-1].message
        await app.run_command("/lang zh")
        assert app.settings.language == "zh"


async def test_chinese_question_and_answer(small_shop):
    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "2024-02"})
    model.enqueue("二月销售额为 72.50，共 3 笔订单。")
    app = make_app(small_shop, model)
    async with app.run_test(size=(80, 24)) as pilot:
        await ask(pilot, "二月份销售怎么样？")
        turn = app.query_one(Turn)
        assert "72.50" in turn.answer_view.source
        assert "运营助手" in model.history[0][0].content


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_layout_fits_small_terminals(small_shop, size):
    app = make_app(small_shop, ScriptedChatModel())
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        prompt = app.query_one("#prompt", Input)
        assert prompt.region.bottom <= size[1] and prompt.region.width >= 40
        assert app.query_one("#sidebar").display is (size[0] >= 100)
        assert isinstance(app.query_one(Collapsible, expect_type=Collapsible) if app.query(Collapsible) else None,
                          (Collapsible, type(None)))


async def test_a_withdrawn_draft_then_a_failed_rewrite_ends_with_the_tool_summaries(small_shop):
    """Two Revising events in one answer (retry, then fallback), after a tool error: the answer still ends."""
    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "1999"})
    model.enqueue("Revenue was 999.99.").enqueue("Revenue was 888.88.")
    app = make_app(small_shop, model)
    async with app.run_test(size=(100, 30)) as pilot:
        await ask(pilot, "How were sales?")
        turn = app.query_one(Turn)
        assert "999.99" not in turn.answer_view.source and "888.88" not in turn.answer_view.source
        assert "Draft withdrawn" in " ".join(str(n.render()) for n in turn.query(".note"))
        assert not app.query_one("#prompt", Input).has_class("-busy")
