"""Make the README's chat screenshots with the REAL local model on the demo shop.

Usage: ``python docs/screens/make_screens.py SHOP_PATH`` (the demo shop, with its models trained: ``shopkeeper demo
--no-chat --shop PATH && shopkeeper train --shop PATH``; the sidebar lists the shop's saved conversations, so use a
fresh one). Asks the two questions of the chat issue and saves each screen as SVG with ``app.save_screenshot`` into
``docs/screens/``.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from assistant.app import create_app
from assistant.config import load_settings
from tools.workspace import Shop

HERE = Path(__file__).resolve().parent
QUESTIONS = [("promote.svg", "What should I promote next week?"), ("churn-zh.svg", "哪些客户快流失了？")]


async def main(shop_path: str) -> None:
    settings = load_settings(provider={"name": "local"})
    app = create_app(Shop.open(Path(shop_path)), settings)
    async with app.run_test(size=(110, 40)) as pilot:
        await asyncio.wait_for(app._assistant_ready.wait(), 600)
        for name, question in QUESTIONS:
            await app.action_new_conversation()
            before = app.answers_finished
            app.query_one("#prompt").value = question
            await pilot.press("enter")
            while app.answers_finished == before:
                await pilot.pause(0.5)
            # the tool's result table expanded above the answer; the view ends with the answer and its evidence
            for line in app.query("ToolLine"):
                line.collapsed = False
            app.query_one("#prompt").cursor_blink = False
            await pilot.pause(0.5)
            app.query_one("#chat").scroll_end(animate=False)
            await pilot.pause(0.5)
            app.save_screenshot(filename=name, path=str(HERE))
            print(f"saved {name}: {app.query('Turn').last().answer_view.source[:300]!r}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
