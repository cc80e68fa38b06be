"""The chat's building blocks: a turn (question, tool lines, streamed answer, evidence) and result views.

Tool results arrive as ``ToolResult.to_dict()``: ``{"summary", "data", "kind", "evidence"}``. :func:`result_view`
turns one into a widget: tables for rows (breakdowns, recommendations, segments, plans), a P10-P90 band chart for
forecasts, the summary text otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widget import Widget
from textual.widgets import Collapsible, DataTable, Markdown, Static

from assistant.events import Answer, ToolCall

#: Keys of ``data`` that hold a list of row dicts worth showing as a table, in order of preference.
ROW_KEYS = ("rows", "picks", "recommendations", "segments", "breakdown", "items", "themes", "reviews", "pairs",
            "customers", "cohorts", "top_movers")
_BLOCKS = " ▁▂▃▄▅▆▇█"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)[:60]
    return "" if value is None else str(value)


def rows_table(rows: Sequence[dict[str, Any]], *, max_rows: int = 50) -> DataTable:
    """A read-only table of ``rows`` (dicts with the same keys)."""
    table: DataTable = DataTable(zebra_stripes=True, cursor_type="row", classes="result-table")
    if not rows:
        return table
    columns = list(rows[0].keys())
    table.add_columns(*columns)
    for row in rows[:max_rows]:
        table.add_row(*(_fmt(row.get(c)) for c in columns))
    return table


def sales_table(data: dict[str, Any]) -> DataTable:
    """Totals of a sales overview with the previous period and last year side by side."""
    table: DataTable = DataTable(zebra_stripes=True, cursor_type="row", classes="result-table")
    table.add_columns("metric", "this period", "previous", "change", "last year", "change ")
    changes = data.get("changes_pct") or {}
    prev, last = data.get("previous") or {}, data.get("last_year") or {}
    for metric in ("revenue", "orders", "units", "aov", "customers"):
        ch_prev = (changes.get("vs_previous") or {}).get(metric)
        ch_year = (changes.get("vs_last_year") or {}).get(metric)
        table.add_row(metric, _fmt(data["totals"].get(metric)), _fmt(prev.get(metric)),
                      "" if ch_prev is None else f"{ch_prev:+.1f}%", _fmt(last.get(metric)),
                      "" if ch_year is None else f"{ch_year:+.1f}%")
    return table


class BandChart(Static):
    """A forecast as columns: the P10-P90 band in light blocks, the P50 as a solid mark, one column per period."""

    def __init__(self, periods: Sequence[str], quantiles: dict[str, Sequence[float]], *, height: int = 6,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.periods = list(periods)
        self.quantiles = {k: list(v) for k, v in quantiles.items()}
        self.chart_height = height

    def render(self) -> Text:
        lo, mid, hi = (self.quantiles.get(k, []) for k in ("p10", "p50", "p90"))
        if not mid:
            return Text("no forecast")
        top = max(hi or mid) or 1.0
        rows = []
        for level in range(self.chart_height, 0, -1):
            line = Text()
            for i in range(len(mid)):
                y_hi, y_mid, y_lo = ((v[i] if v else mid[i]) / top * self.chart_height for v in (hi, mid, lo))
                if level - 1 < y_mid <= level:
                    line.append("  ██  ", style="bold")
                elif y_lo < level and level - 1 < y_hi:
                    line.append("  ░░  ", style="dim")
                else:
                    line.append("      ")
            rows.append(line)
        axis = Text("".join(f"{p[5:]:^6}"[:6] for p in self.periods), style="dim")
        legend = Text(f"P50 █  P10-P90 ░   max {top:,.0f}", style="dim")
        return Text("\n").join([*rows, axis, legend])


def sparkline_text(values: Sequence[float]) -> str:
    """A one-line sparkline (used in tables and narrow screens)."""
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(_BLOCKS[1 + int((v - lo) / span * (len(_BLOCKS) - 2))] for v in values)


def result_view(result: dict[str, Any] | None, summary: str = "") -> Widget:
    """The best widget for one tool result."""
    if not result:
        return Static(summary or "(no result)", classes="tool-summary")
    data = result.get("data") or {}
    kind = result.get("kind")
    parts: list[Widget] = []
    if kind == "forecast" and data.get("quantiles"):
        parts.append(BandChart(data.get("periods", []), data["quantiles"], classes="band-chart"))
    elif kind == "sales" and data.get("totals"):
        parts.append(sales_table(data))
        if data.get("breakdown"):
            parts.append(rows_table(data["breakdown"]))
    else:
        key = next((k for k in ROW_KEYS if isinstance(data.get(k), list) and data[k]
                    and isinstance(data[k][0], dict)), None)
        if key:
            parts.append(rows_table(data[key]))
    parts.append(Static(result.get("summary", summary), classes="tool-summary"))
    return Vertical(*parts, classes="result")


def tool_title(name: str, args: dict[str, Any], state: str = "running", seconds: float | None = None) -> str:
    arg_text = ", ".join(f"{k}={v!r}" for k, v in args.items())
    if len(arg_text) > 60:
        arg_text = arg_text[:57] + "…"
    mark = {"running": "⋯", "ok": "✓", "error": "✗"}[state]
    timing = f" {seconds:.2f} s" if seconds is not None else ""
    return f"{mark} {name}({arg_text}){timing}"


class ToolLine(Collapsible):
    """One tool call: a title line while it runs; expand it to see the structured result."""

    def __init__(self, call_id: str, name: str, args: dict[str, Any]) -> None:
        super().__init__(title=tool_title(name, args), collapsed=True, classes="tool-line running")
        self.call_id, self.tool_name, self.args = call_id, name, args

    async def finish(self, call: ToolCall) -> None:
        self.title = tool_title(call.name, call.args, "ok" if call.ok else "error", call.seconds)
        self.remove_class("running")
        self.add_class("ok" if call.ok else "error")
        await self.query_one(Collapsible.Contents).mount(result_view(call.result, call.summary))


def evidence_markdown(answer: Answer) -> str:
    lines = ["| figure | tool | call |", "| --- | --- | --- |"]
    lines += [f"| {c.figure} | {c.tool}{f' ({c.derivation})' if c.derivation else ''} | `{c.call_id}` |"
              for c in answer.citations]
    sources = []
    for call in answer.tool_calls:
        for ev in (call.result or {}).get("evidence", []):
            sources.append(f"- `{call.call_id}` **{call.name}**: {ev['source']} — {ev['detail']}")
    if sources:
        lines += ["", "Sources:", *sources]
    if answer.ungrounded:
        lines += ["", f"Withdrawn from the draft (no tool returned them): {', '.join(answer.ungrounded)}"]
    return "\n".join(lines)


class Evidence(Collapsible):
    """Which tool result each figure of the answer came from."""

    def __init__(self, answer: Answer) -> None:
        calls = len({c.call_id for c in answer.citations})
        title = (f"Evidence · {len(answer.citations)} figure(s) from {calls} tool call(s)"
                 + (" · grounded" if answer.grounded else " · NOT grounded"))
        super().__init__(Markdown(evidence_markdown(answer)), title=title, collapsed=True, classes="evidence")


class Turn(Vertical):
    """One question and everything that answers it."""

    def __init__(self, question: str) -> None:
        super().__init__(classes="turn")
        self.question = question
        self.tool_lines: dict[str, ToolLine] = {}

    def compose(self) -> ComposeResult:
        yield Static(Text(self.question), classes="question")
        yield Vertical(classes="tools")
        yield Markdown("", classes="answer")

    @property
    def answer_view(self) -> Markdown:
        return self.query_one(".answer", Markdown)

    async def add_tool(self, call_id: str, name: str, args: dict[str, Any]) -> None:
        line = ToolLine(call_id, name, args)
        self.tool_lines[call_id] = line
        await self.query_one(".tools", Vertical).mount(line)

    async def finish_tool(self, call: ToolCall) -> None:
        if call.call_id not in self.tool_lines:
            await self.add_tool(call.call_id, call.name, call.args)
        await self.tool_lines[call.call_id].finish(call)

    async def note(self, text: str, classes: str = "note") -> None:
        await self.mount(Static(Text(text), classes=classes), before=self.answer_view)

    async def show_answer(self, answer: Answer) -> None:
        await self.answer_view.update(answer.text)
        if answer.incomplete:
            await self.mount(Static(Text(f"(incomplete: {answer.error or 'stopped'})"), classes="note error"))
        elif answer.tool_calls or answer.citations:
            await self.mount(Evidence(answer))
