"""The Python API: ``Assistant.open(shop=…, provider=…)``, ``.ask(q) -> Answer``, ``async .stream(q)``.

    from assistant import Assistant

    with Assistant.open(shop="demo") as bot:
        answer = bot.ask("What were sales last month?")
        print(answer.text, answer.grounded, [c.name for c in answer.tool_calls])

Conversations are kept per ``thread_id`` in the shop's ``history.sqlite``; only complete answers are saved.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from assistant.agent import Agent
from assistant.config import Settings, load_settings
from assistant.events import Answer, AnswerDone, Event
from assistant.history import History
from tools.workspace import Shop, resolve_shop_path


class Assistant:
    """Shopkeeper for one shop. Create with :meth:`open`; close (or use ``with``) to free a local model."""

    def __init__(self, shop: Shop, model: Any, settings: Settings, *, provider_name: str = "") -> None:
        self.shop = shop
        self.model = model
        self.settings = settings
        self.provider_name = provider_name
        self.agent = Agent(model, shop, max_tool_rounds=settings.agent.max_tool_rounds,
                           time_budget_s=settings.agent.time_budget_s, settings=settings)
        self.history = History(shop.history_path)

    @classmethod
    def open(cls, shop: str | None = None, *, provider: str | None = None, model: str | None = None,
             settings: Settings | None = None, chat_model: Any = None) -> Assistant:
        """Open the assistant on a shop.

        Args:
            shop: shop name or folder (default: the ``shop`` setting).
            provider: ``openai``, ``local`` or ``auto`` (default: the settings).
            model: model name for the provider (e.g. ``deepseek-chat``).
            settings: settings to use instead of loading them.
            chat_model: a ready LangChain chat model (tests, custom providers); skips the provider factory.

        Raises:
            ShopkeeperError: no such shop, or no usable model provider (the message says how to set one up).
        """
        settings = settings or load_settings()
        if provider or model:
            update = {k: v for k, v in (("name", provider), ("model", model)) if v}
            settings = settings.model_copy(update={"provider": settings.provider.model_copy(update=update)})
        path = resolve_shop_path(shop or settings.shop, shops_dir=settings.shops_dir)
        the_shop = Shop.open(path)
        name = "custom"
        if chat_model is None:
            from assistant.providers import choose_provider, make_chat_model

            name = choose_provider(settings).name
            chat_model = make_chat_model(settings, shop=the_shop)
        return cls(the_shop, chat_model, settings, provider_name=name)

    async def stream(self, question: str, thread_id: str | None = None) -> AsyncIterator[Event]:
        """Yield the events of answering ``question``; the last is :class:`AnswerDone`. Saves complete answers."""
        thread = thread_id or self.history.new_conversation(question)
        history = self.history.pairs(thread, self.settings.agent.history_turns) if thread_id else []
        async for event in self.agent.stream(question, history, language=self.settings.language,
                                             thread_id=thread):
            yield event
            # Saved only once the consumer has taken the final answer: a stream abandoned before its end (a
            # cancelled chat turn) is never stored as final.
            if isinstance(event, AnswerDone) and not event.answer.incomplete:
                self.history.add_turn(thread, question, event.answer)

    def ask(self, question: str, thread_id: str | None = None) -> Answer:
        """Answer ``question`` (blocking) and return the :class:`Answer`."""

        async def run() -> Answer:
            answer = None
            async for event in self.stream(question, thread_id):
                if isinstance(event, AnswerDone):
                    answer = event.answer
            assert answer is not None, "the agent stream always ends with AnswerDone"
            return answer

        return asyncio.run(run())

    def warm(self) -> None:
        """Prepare a local model for the first question (called by the chat app while the user types)."""
        self.agent.warm(self.settings.language if self.settings.language in ("zh", "en") else "en")

    def close(self) -> None:
        runtime = getattr(self.model, "runtime", None)
        if runtime is not None and hasattr(runtime, "close"):
            runtime.close()

    def __enter__(self) -> Assistant:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
