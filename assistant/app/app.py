"""The Shopkeeper chat: a Textual app over the headless assistant.

Attributes down, messages up: the app owns an :class:`~assistant.api.Assistant` (made by an injected factory, so
the CLI and the tests share :func:`create_app`) and renders its event stream; it never imports LangChain.

* One ``@work(exclusive=True, exit_on_error=False)`` async worker per answer, streaming into a Markdown widget;
  the prompt is locked while it runs, Escape cancels it, and any worker failure ends in one notification
  (:meth:`on_worker_state_changed`).
* The assistant (and a local model) is created in a thread worker at start, shown as "warming up…", so the prompt
  is interactive at once; a question asked before it is ready waits for it.
* Training runs in a thread worker that reports through ``call_from_thread``; the chat stays usable.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Input, Label, ListItem, ListView, Markdown, ProgressBar, Static
from textual.worker import Worker, WorkerState

from assistant.app.commands import COMMANDS, CommandError, help_markdown, parse
from assistant.app.widgets import Turn, result_view
from assistant.config import Settings
from assistant.events import Answer, AnswerDone, Citation, ErrorEvent, Revising, TextDelta, ToolCall, ToolFinished, \
    ToolStarted
from tools.errors import ShopkeeperError
from tools.workspace import Shop

AssistantFactory = Callable[[Settings], Any]

WELCOME = """**Shopkeeper** · shop *{shop}*

Ask about your shop in English or Chinese, for example:

- How were sales last month, compared with the month before?
- Which products sold best in the last 7 days?
- 上个月各国家的销售额是多少？

Every figure in an answer comes from a tool; open a tool line or *Evidence* to see where. `/help` lists the
commands; Esc cancels an answer."""


class ShopkeeperApp(App[None]):
    """The chat app for one shop."""

    CSS_PATH = "app.tcss"
    TITLE = "Shopkeeper"
    AUTO_FOCUS = "#prompt"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="cancel", tooltip="Stop the answer being written"),
        Binding("ctrl+n", "new_conversation", "New chat", id="new", tooltip="Start a new conversation"),
        Binding("ctrl+b", "toggle_sidebar", "Chats", id="sidebar", tooltip="Show or hide saved conversations"),
        Binding("ctrl+e", "export", "Export", id="export", tooltip="Save this conversation as Markdown"),
        Binding("f1", "help", "Help", id="help", tooltip="Commands and keys"),
        Binding("ctrl+q", "quit", "Quit", id="quit", priority=True),
    ]

    def __init__(self, shop: Shop, settings: Settings, assistant_factory: AssistantFactory) -> None:
        super().__init__()
        self.shop = shop
        self.settings = settings
        self.assistant_factory = assistant_factory
        self.assistant: Any = None
        self.thread_id: str | None = None
        self._assistant_ready = asyncio.Event()
        self._busy = False
        self._answering: Turn | None = None
        self.answers_finished = 0  # answers ended (done, failed or cancelled); lets tests and scripts wait
        self._train_cancel = threading.Event()
        self.sub_title = shop.name

    # -- layout ---------------------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Horizontal(id="body"):
            with Vertical(id="sidebar"):
                yield Label("Conversations", classes="sidebar-title")
                yield ListView(id="conversations")
            with Vertical(id="main"):
                with VerticalScroll(id="chat", can_focus=False):
                    yield Markdown(WELCOME.format(shop=self.shop.name), id="welcome", classes="system-message")
                yield ProgressBar(id="train-progress", total=100, show_eta=False)
                yield Static("warming up…", id="status")
                yield Input(placeholder="Ask about your shop…  (/help for commands)", id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#train-progress").display = False
        self.query_one("#sidebar").display = self.size.width >= 100
        self.warm_up()

    # -- start-up -------------------------------------------------------------------------------------------------

    @work(thread=True, exit_on_error=False, group="warm")
    def warm_up(self) -> None:
        """Create the assistant (and load a local model) off the UI thread."""
        try:
            assistant = self.assistant_factory(self.settings)
            warm = getattr(assistant, "warm", None)
            if callable(warm):
                warm()
        except ShopkeeperError as err:
            self.call_from_thread(self._set_status, f"{err.title}: {err}")
            self.call_from_thread(self.notify, str(err), title=err.title, severity="error", timeout=15)
            return
        self.assistant = assistant
        self.call_from_thread(self._assistant_is_ready)

    def _assistant_is_ready(self) -> None:
        self._assistant_ready.set()
        self._set_status(self._model_line())
        self.refresh_conversations()

    def _model_line(self) -> str:
        name = getattr(self.assistant, "provider_name", "") or "model"
        return f"{self.shop.name} · {name} · language {self.settings.language} · Esc cancels · /help"

    def _set_status(self, text: str) -> None:
        self.query_one("#status", Static).update(text)

    # -- asking ---------------------------------------------------------------------------------------------------

    @on(Input.Submitted, "#prompt")
    async def submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self._busy:
            return
        event.input.value = ""
        if text.startswith("/"):
            await self.run_command(text)
            return
        for welcome in self.query("#welcome"):
            await welcome.remove()  # it has done its job once the first question is asked
        turn = Turn(text)
        await self.query_one("#chat", VerticalScroll).mount(turn)
        self.answer(turn, text)

    def _lock(self, busy: bool) -> None:
        """Lock the prompt while an answer is written. It keeps the focus (so Escape reaches the app's cancel
        binding); submissions are ignored until the answer ends."""
        self._busy = busy
        prompt = self.query_one("#prompt", Input)
        prompt.set_class(busy, "-busy")
        prompt.placeholder = ("answering… press Esc to cancel" if busy
                              else "Ask about your shop…  (/help for commands)")
        if not busy:
            prompt.focus()

    @work(exclusive=True, exit_on_error=False, group="answer")
    async def answer(self, turn: Turn, question: str) -> None:
        """Stream one answer into ``turn``."""
        chat = self.query_one("#chat", VerticalScroll)
        self._lock(True)
        self._answering = turn
        if not self._assistant_ready.is_set():
            self._set_status("warming up… (the question will be answered as soon as the model is ready)")
            await self._assistant_ready.wait()
        self._set_status("answering… (Esc to cancel)")
        stream = Markdown.get_stream(turn.answer_view)
        try:
            async for event in self.assistant.stream(question, self.thread_id):
                if self._answering is not turn:  # cancelled: stop reading (an unread answer is never saved)
                    break
                if isinstance(event, TextDelta):
                    await stream.write(event.text)
                elif isinstance(event, ToolStarted):
                    await turn.add_tool(event.call_id, event.name, event.args)
                elif isinstance(event, ToolFinished):
                    await turn.finish_tool(event.call)
                elif isinstance(event, Revising):
                    await _stop(stream)
                    await turn.answer_view.update("")
                    how = "rewriting it" if event.how == "retry" else "showing the tool results instead"
                    await turn.note(f"Draft withdrawn: {', '.join(event.ungrounded) or 'figures'} not found in any "
                                    f"tool result; {how}.")
                    stream = Markdown.get_stream(turn.answer_view)
                elif isinstance(event, ErrorEvent):
                    self.notify(event.message, title=event.title, severity="error", timeout=10)
                elif isinstance(event, AnswerDone):
                    await _stop(stream)
                    await turn.show_answer(event.answer)
                    if not event.answer.incomplete:
                        self.thread_id = event.answer.thread_id
                chat.call_after_refresh(chat.scroll_end, animate=False)
            self.refresh_conversations()  # after the stream has ended, i.e. after the turn was saved
        finally:
            await _stop(stream)
            if self._answering is turn:  # not already ended by action_cancel
                self._end_answer()

    def _end_answer(self) -> None:
        self._answering = None
        self._lock(False)
        self._set_status(self._model_line() if self._assistant_ready.is_set() else "warming up…")
        self.answers_finished += 1

    async def action_cancel(self) -> None:
        turn = self._answering
        if turn is not None:
            # The UI is restored at once; the worker's task may take a moment to unwind (a model call in a
            # thread finishes its current step), and nothing it does afterwards touches this turn.
            self.workers.cancel_group(self, "answer")
            self._end_answer()
            await turn.note("(cancelled)", classes="note error")
        elif self.query_one("#train-progress").display:
            self._train_cancel.set()
            self.notify("Stopping training after the current step…")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place where a failed worker is reported."""
        if event.state != WorkerState.ERROR:
            return
        err = event.worker.error
        title = getattr(err, "title", "Something went wrong")
        self.notify(f"{err}", title=title, severity="error", timeout=10)
        if event.worker.group == "answer":
            self._lock(False)
        if event.worker.group == "train":
            self.query_one("#train-progress").display = False

    # -- conversations --------------------------------------------------------------------------------------------

    @work(exclusive=True, exit_on_error=False, group="conversations")
    async def refresh_conversations(self) -> None:
        if self.assistant is None:
            return
        listing = self.query_one("#conversations", ListView)
        await listing.clear()
        for conv in self.assistant.history.conversations():
            label = Label(conv.title, markup=False)
            await listing.append(ListItem(label, id=f"conv-{conv.id}"))

    @on(ListView.Selected, "#conversations")
    async def conversation_selected(self, event: ListView.Selected) -> None:
        if self._busy or event.item.id is None:
            return
        await self.load_conversation(event.item.id.removeprefix("conv-"))

    async def load_conversation(self, thread_id: str) -> None:
        """Show a saved conversation and continue it."""
        chat = self.query_one("#chat", VerticalScroll)
        await chat.remove_children()
        self.thread_id = thread_id
        for t in self.assistant.history.turns(thread_id):
            turn = Turn(t.question)
            await chat.mount(turn)
            data = t.answer_json
            calls = [ToolCall(**c) for c in data.get("tool_calls", [])]
            for call in calls:
                await turn.finish_tool(call)
            await turn.show_answer(Answer(text=t.answer, language=t.language, tool_calls=calls,
                                          citations=[Citation(**c) for c in data.get("citations", [])],
                                          grounded=data.get("grounded", True),
                                          ungrounded=data.get("ungrounded", []), thread_id=thread_id))
        chat.scroll_end(animate=False)

    async def action_new_conversation(self) -> None:
        if self._busy:
            return
        self.thread_id = None
        await self.query_one("#chat", VerticalScroll).remove_children()
        self.query_one("#prompt", Input).focus()

    def action_toggle_sidebar(self) -> None:
        sidebar = self.query_one("#sidebar")
        sidebar.display = not sidebar.display

    def action_export(self) -> None:
        if self.assistant is None or self.thread_id is None:
            self.notify("Nothing to export yet: ask something first.", severity="warning")
            return
        folder = self.shop.path / "exports"
        folder.mkdir(exist_ok=True)
        path = folder / f"conversation-{self.thread_id}.md"
        path.write_text(self.assistant.history.export_markdown(self.thread_id), encoding="utf-8")
        self.notify(f"Saved to {path}", title="Exported")

    async def action_help(self) -> None:
        await self._show_markdown(help_markdown([(b.key, b.description) for b in self.BINDINGS]))

    # -- commands -------------------------------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Any:
        yield from super().get_system_commands(screen)
        for name, (args, text) in COMMANDS.items():
            if not args or name in ("train", "lang", "model"):
                yield SystemCommand(f"/{name}", text, lambda n=name: self.call_later(self.run_command, f"/{n}"))

    async def _show_markdown(self, text: str) -> None:
        chat = self.query_one("#chat", VerticalScroll)
        await chat.mount(Markdown(text, classes="system-message"))
        chat.call_after_refresh(chat.scroll_end, animate=False)

    async def run_command(self, text: str) -> None:
        try:
            cmd = parse(text)
        except CommandError as err:
            self.notify(str(err), severity="warning")
            return
        handler = getattr(self, f"_cmd_{cmd.name}")
        try:
            await handler(cmd.args)
        except CommandError as err:
            self.notify(str(err), severity="warning")
        except ShopkeeperError as err:
            self.notify(str(err), title=err.title, severity="error", timeout=10)

    async def _cmd_help(self, args: list[str]) -> None:
        await self.action_help()

    async def _cmd_status(self, args: list[str]) -> None:
        from tools.status import shop_status

        st = shop_status(self.shop)
        c, o = st["counts"], st["orders"]
        lines = [f"**{self.shop.name}** — orders {o['first'] or '-'} .. {o['last'] or '-'}", "",
                 "| table | rows |", "| --- | ---: |"]
        lines += [f"| {k} | {v:,} |" for k, v in c.items()]
        for coll in st["review_collections"]:
            lines.append(f"| reviews: {coll['collection']} ({coll['language']}) | {coll['reviews']:,} |")
        await self._show_markdown("\n".join(lines))

    async def _cmd_clear(self, args: list[str]) -> None:
        await self.action_new_conversation()

    async def _cmd_export(self, args: list[str]) -> None:
        self.action_export()

    async def _cmd_lang(self, args: list[str]) -> None:
        if len(args) != 1 or args[0] not in ("zh", "en", "auto"):
            raise CommandError("Use /lang zh, /lang en or /lang auto.")
        self.settings.language = args[0]
        if self.assistant is not None:
            self.assistant.settings.language = args[0]
        self._set_status(self._model_line())
        self.notify(f"Answer language: {args[0]}")

    async def _cmd_model(self, args: list[str]) -> None:
        if not args:
            self.notify(self._model_line(), title="Model")
            return
        if args[0] not in ("local", "openai", "auto"):
            raise CommandError("Use /model local, /model openai [MODEL] or /model auto.")
        update = {"name": args[0]} | ({"model": args[1]} if len(args) > 1 else {})
        self.settings = self.settings.model_copy(
            update={"provider": self.settings.provider.model_copy(update=update)})
        if self.assistant is not None:
            self.assistant.close()
        self.assistant = None
        self._assistant_ready.clear()
        self._set_status("warming up…")
        self.warm_up()

    async def _cmd_rename(self, args: list[str]) -> None:
        if not args or self.thread_id is None:
            raise CommandError("Use /rename TITLE in a saved conversation.")
        self.assistant.history.rename(self.thread_id, " ".join(args))
        self.refresh_conversations()

    async def _cmd_delete(self, args: list[str]) -> None:
        if self.thread_id is None:
            raise CommandError("Open a saved conversation first (ctrl+b lists them).")
        self.assistant.history.delete(self.thread_id)
        await self.action_new_conversation()
        self.refresh_conversations()
        self.notify("Conversation deleted.")

    async def _cmd_import(self, args: list[str]) -> None:
        if len(args) != 2 or args[1] not in ("orders", "products", "reviews"):
            raise CommandError("Use /import FILE orders|products|reviews.")
        self.import_file(Path(args[0]).expanduser(), args[1])

    @work(thread=True, exit_on_error=False, group="import")
    def import_file(self, path: Path, kind: str) -> None:
        from tools.importer import import_file

        self.call_from_thread(self._set_status, f"importing {path.name}…")
        report = import_file(self.shop, path, kind)
        text = report.message or (f"Imported **{path.name}**: {report.records:,} records, {report.inserted:,} added, "
                                  f"{report.already_present:,} already there, {report.quarantined:,} quarantined"
                                  + (f" ({', '.join(f'{k} {v}' for k, v in report.reasons.items())})"
                                     if report.reasons else "") + ".")
        self.call_from_thread(self.call_later, self._show_markdown, text)
        self.call_from_thread(self._set_status, self._model_line())

    async def _cmd_train(self, args: list[str]) -> None:
        from tools.training import JOBS

        what = args[0] if args else "all"
        if what != "all" and what not in JOBS:
            raise CommandError(f"Use /train with one of: {', '.join(JOBS)} or all.")
        bar = self.query_one("#train-progress", ProgressBar)
        bar.update(progress=0)
        bar.display = True
        self._train_cancel.clear()
        self.train(what)

    @work(thread=True, exit_on_error=False, group="train")
    def train(self, what: str) -> None:
        from tools.training import TrainingCancelled, train

        def progress(frac: float, text: str) -> None:
            if self._train_cancel.is_set():
                raise TrainingCancelled("Training stopped; the previous models stay in use.")
            self.call_from_thread(self._train_progress, frac, text)

        try:
            reports = train(self.shop, what, progress)
        except TrainingCancelled as err:
            self.call_from_thread(self.notify, str(err), title="Training")
            return
        finally:
            self.call_from_thread(self._train_done)
        lines = [f"Trained **{r.name}** in {r.seconds:.0f} s: {r.summary}" for r in reports]
        self.call_from_thread(self.call_later, self._show_markdown, "\n\n".join(lines))

    def _train_progress(self, frac: float, text: str) -> None:
        self.query_one("#train-progress", ProgressBar).update(progress=round(frac * 100))
        self._set_status(f"training: {text}  ({frac:.0%}, Esc stops)")

    def _train_done(self) -> None:
        self.query_one("#train-progress").display = False
        self._set_status(self._model_line() if self._assistant_ready.is_set() else "warming up…")

    async def on_unmount(self) -> None:
        if self.assistant is not None:
            self.assistant.close()


def create_app(shop: Shop, settings: Settings, assistant_factory: AssistantFactory | None = None) -> ShopkeeperApp:
    """The one app factory, shared by ``shopkeeper chat`` and the tests (which inject a scripted assistant)."""
    if assistant_factory is None:
        def assistant_factory(s: Settings) -> Any:
            from assistant.api import Assistant

            return Assistant.open(str(shop.path), settings=s)

    return ShopkeeperApp(shop, settings, assistant_factory)


__all__ = ["ShopkeeperApp", "create_app", "result_view"]


async def _stop(stream: Any) -> None:
    """Stop a Markdown stream. A stream whose task has not run yet (created just before the answer ended) would,
    when cancelled, raise CancelledError into the caller (Textual 8's MarkdownStream.stop awaits the cancelled
    task), ending the answer worker as if Escape had been pressed and leaving the prompt locked; one pass of the
    event loop lets the task start first."""
    await asyncio.sleep(0)
    await stream.stop()
