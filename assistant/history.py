"""Conversations, kept in ``history.sqlite`` in the shop's folder (owner-only permissions).

Only complete answers are saved: a turn cut short (error, cancellation, time budget) is never stored as final.
The schema evolves through numbered migrations, applied in order and recorded in ``_migrations``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.events import Answer

MIGRATIONS: list[str] = [
    # 1: conversations and their turns
    """
    CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE turns (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        language TEXT NOT NULL,
        answer_json TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX turns_by_conversation ON turns(conversation_id, id);
    """,
]


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    created_at: str
    updated_at: str
    turns: int = 0


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str
    language: str
    created_at: str
    answer_json: dict[str, Any]


def _now() -> str:
    return dt.datetime.now().isoformat(timespec="seconds")


class History:
    """The conversation store of one shop."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self.path.touch(mode=0o600)
        os.chmod(self.path, 0o600)
        with self._db() as db:
            db.execute("CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, applied_at TEXT)")
            done = {row[0] for row in db.execute("SELECT id FROM _migrations")}
            for number, sql in enumerate(MIGRATIONS, start=1):
                if number not in done:
                    db.executescript(sql)
                    db.execute("INSERT INTO _migrations VALUES (?, ?)", (number, _now()))

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=5)
        db.execute("PRAGMA foreign_keys = ON")
        try:
            with db:  # one transaction: committed on success, rolled back on error
                yield db
        finally:
            db.close()

    def new_conversation(self, title: str = "New conversation") -> str:
        cid = uuid.uuid4().hex[:12]
        with self._db() as db:
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?)", (cid, title[:80], _now(), _now()))
        return cid

    def ensure(self, conversation_id: str, title: str) -> None:
        """Create the conversation if it does not exist yet (ids may come from the caller)."""
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO conversations VALUES (?, ?, ?, ?)",
                       (conversation_id, title[:80], _now(), _now()))

    def add_turn(self, conversation_id: str, question: str, answer: Answer) -> None:
        """Save a complete turn. Incomplete answers are refused: they must never look final."""
        if answer.incomplete:
            raise ValueError("An incomplete answer is not saved to the history.")
        self.ensure(conversation_id, question)
        with self._db() as db:
            db.execute("INSERT INTO turns (conversation_id, question, answer, language, answer_json, created_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (conversation_id, question, answer.text, answer.language,
                        json.dumps(answer.to_dict(), ensure_ascii=False, default=str), _now()))
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (_now(), conversation_id))

    def turns(self, conversation_id: str) -> list[Turn]:
        with self._db() as db:
            rows = db.execute("SELECT question, answer, language, created_at, answer_json FROM turns "
                              "WHERE conversation_id = ? ORDER BY id", (conversation_id,)).fetchall()
        return [Turn(q, a, lang, at, json.loads(js)) for q, a, lang, at, js in rows]

    def pairs(self, conversation_id: str, last: int = 6) -> list[tuple[str, str]]:
        """The last ``last`` (question, answer) pairs, oldest first, to give the model context."""
        return [(t.question, t.answer) for t in self.turns(conversation_id)[-last:]]

    def conversations(self) -> list[Conversation]:
        with self._db() as db:
            rows = db.execute("""SELECT c.id, c.title, c.created_at, c.updated_at, count(t.id)
                                 FROM conversations c LEFT JOIN turns t ON t.conversation_id = c.id
                                 GROUP BY c.id ORDER BY c.updated_at DESC, c.rowid DESC""").fetchall()
        return [Conversation(*row) for row in rows]

    def rename(self, conversation_id: str, title: str) -> None:
        with self._db() as db:
            if db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title[:80], conversation_id)
                          ).rowcount == 0:
                raise KeyError(f"No conversation {conversation_id!r}.")

    def delete(self, conversation_id: str) -> None:
        with self._db() as db:
            db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def export_markdown(self, conversation_id: str) -> str:
        title = next((c.title for c in self.conversations() if c.id == conversation_id), None)
        if title is None:
            raise KeyError(f"No conversation {conversation_id!r}.")
        out = [f"# {title}", ""]
        for t in self.turns(conversation_id):
            out += [f"**You** ({t.created_at}): {t.question}", "", t.answer, ""]
            tools = t.answer_json.get("tool_calls", [])
            if tools:
                out.append("_Tools: " + ", ".join(f"{c['name']}({json.dumps(c['args'], ensure_ascii=False)})"
                                                  for c in tools) + "_")
                out.append("")
        return "\n".join(out)
