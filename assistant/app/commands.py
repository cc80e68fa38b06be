"""Slash commands of the chat: parsing and help. The app (``app.py``) carries them out."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

#: name -> (arguments, what it does); also the command palette's entries.
COMMANDS: dict[str, tuple[str, str]] = {
    "help": ("", "Show the commands and keys"),
    "status": ("", "What the shop holds: rows, dates, reviews, quarantine"),
    "train": ("[forecaster|all]", "Train the shop's models (the chat stays usable)"),
    "import": ("FILE orders|products|reviews", "Import a CSV, Parquet or Excel file"),
    "model": ("[local|openai] [MODEL]", "Show or switch the model provider"),
    "lang": ("zh|en|auto", "Answer language"),
    "clear": ("", "Start a new conversation"),
    "export": ("", "Save this conversation as Markdown in the shop folder"),
    "rename": ("TITLE", "Rename this conversation"),
    "delete": ("", "Delete this conversation"),
}


@dataclass(frozen=True)
class Command:
    name: str
    args: list[str]


class CommandError(ValueError):
    """A slash command the app cannot run; the message says the right form."""


def parse(text: str) -> Command:
    """Parse ``/name args…`` (quotes group arguments with spaces)."""
    try:
        parts = shlex.split(text.strip()[1:])
    except ValueError as err:
        raise CommandError(f"Cannot read that command: {err}.") from err
    if not parts:
        raise CommandError("Type a command after '/', e.g. /help.")
    name = parts[0].lower()
    if name not in COMMANDS:
        raise CommandError(f"Unknown command /{name}. Type /help for the list.")
    return Command(name, parts[1:])


def help_markdown(bindings: list[tuple[str, str]]) -> str:
    lines = ["**Commands**", ""]
    lines += [f"- `/{name}{' ' + args if args else ''}` — {text}" for name, (args, text) in COMMANDS.items()]
    lines += ["", "**Keys**: " + " · ".join(f"{key} {text.lower()}" for key, text in bindings), "",
              "Ask anything about the shop in Chinese or English, e.g. *what should I promote next week?* or "
              "*上个月销售额是多少？*"]
    return "\n".join(lines)
