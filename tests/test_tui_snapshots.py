"""Snapshots of the chat's main states at 100x30 and 80x24 (layout only; behaviour is in test_tui.py).

Regenerate with ``pytest tests/test_tui_snapshots.py --snapshot-update`` and look at every changed SVG before
committing it (``tests/__snapshots__/``).
"""

from __future__ import annotations

import itertools

import pytest
from textual.widgets import Input

from assistant.testing import ScriptedChatModel
from tests.test_tui import ask, make_app

SIZES = [(100, 30), (80, 24)]


class _Clock:
    """A perf_counter that advances 0.25 s per call, so durations shown in tool lines are the same every run."""

    def __init__(self) -> None:
        self._ticks = itertools.count()

    def perf_counter(self) -> float:
        return next(self._ticks) * 0.25


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch):
    monkeypatch.setattr("assistant.agent.time", _Clock())


async def settle(pilot, *, top: bool = False) -> None:
    """Let deferred scrolls and refreshes run, then put the chat at a fixed scroll position."""
    pilot.app.query_one("#prompt").cursor_blink = False  # a blinking cursor makes every snapshot a coin toss
    await pilot.pause(0.2)
    chat = pilot.app.query_one("#chat")
    if top:
        chat.scroll_home(animate=False)
    else:
        chat.scroll_end(animate=False)
    await pilot.pause()
    await pilot.wait_for_scheduled_animations()
    await pilot.pause()


def _answered_app(shop):
    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "2024-02", "group_by": "product"})
    model.enqueue("February revenue was **72.50** from 3 orders, up 16.0% on January. The blue mug sold most "
                  "(50.00).")
    return make_app(shop, model)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_start_screen(snap_compare, small_shop, size):
    app = make_app(small_shop, ScriptedChatModel())

    async def ready(pilot):
        await app._assistant_ready.wait()
        await settle(pilot, top=True)

    assert snap_compare(app, terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_answer_with_tools_and_evidence(snap_compare, small_shop, size):
    app = _answered_app(small_shop)

    async def run(pilot):
        await ask(pilot, "How were sales in February 2024?")
        for line in app.query("ToolLine"):
            line.collapsed = False
        app.query_one("Evidence").collapsed = False
        await settle(pilot, top=True)

    assert snap_compare(app, terminal_size=size, run_before=run)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare, small_shop, size):
    app = make_app(small_shop, ScriptedChatModel())

    async def run(pilot):
        await app._assistant_ready.wait()
        app.query_one("#prompt", Input).value = "/help"
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run)


def test_chinese_answer(snap_compare, small_shop):
    model = ScriptedChatModel().enqueue_tool_call("sales_overview", {"period": "2024-02"})
    model.enqueue("二月销售额为 **72.50**，共 3 笔订单，比一月增长 16.0%。")
    app = make_app(small_shop, model)

    async def run(pilot):
        await ask(pilot, "二月份销售怎么样？")
        await settle(pilot)

    assert snap_compare(app, terminal_size=(80, 24), run_before=run)
