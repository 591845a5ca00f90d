"""The web chat's conversations, kept in SQLite under the index folder.

`index/conversations.sqlite3` (standard library `sqlite3`) holds each
conversation (its owner, title, collection, times) and its turns (the
question as asked and the whole checked Answer as JSON, without the passages
retrieved but not cited). They survive a page reload and a server restart.
Every call names the owner (the logged-in user with RAGCHAT_AUTH, else ""),
and a conversation is only ever read, renamed or deleted by its owner.
One connection per call: Gradio runs callbacks on worker threads.

Left out: search over conversations, sharing them, and export.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from app.errors import RagchatError
from app.types import Answer

FILE = "conversations.sqlite3"
TITLE_CHARS = 80

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL, collection TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS conversations_owner ON conversations (owner, updated);
CREATE TABLE IF NOT EXISTS turns (
    conversation TEXT NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    n INTEGER NOT NULL, question TEXT NOT NULL, answer TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (conversation, n));
"""


@dataclass
class Conversation:
    id: str
    title: str
    collection: str
    updated: float
    turns: list[tuple[str, Answer]] = field(default_factory=list)  # (question, answer)


def title_of(question: str) -> str:
    """A conversation's title: its first question, on one line, cut to length."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[:TITLE_CHARS - 1].rstrip() + "\u2026"


class Conversations:
    def __init__(self, index_dir: Path):
        self.path = Path(index_dir) / FILE
        self._ready = False

    def _db(self) -> sqlite3.Connection:
        try:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=10)
            db.execute("PRAGMA foreign_keys = ON")
            if not self._ready:
                db.execute("PRAGMA journal_mode = WAL")
                db.executescript(SCHEMA)
                self._ready = True
            return db
        except sqlite3.Error as e:
            raise RagchatError(f"{self.path}: cannot open the conversations ({e})") from None

    def start(self, owner: str, question: str, collection: str) -> str:
        ident, now = uuid.uuid4().hex, time.time()
        with closing(self._db()) as db, db:
            db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)",
                       (ident, owner, title_of(question), collection, now, now))
        return ident

    def add(self, ident: str, owner: str, question: str, answer: Answer) -> None:
        """Append a turn; a conversation that is gone (deleted elsewhere) or not the
        owner's raises RagchatError."""
        record = answer.to_dict()
        record.pop("retrieved", None)  # passages not cited: large, and not shown again
        now = time.time()
        with closing(self._db()) as db, db:
            if not db.execute("UPDATE conversations SET updated = ? WHERE id = ? AND owner = ?",
                              (now, ident, owner)).rowcount:
                raise RagchatError("this conversation was deleted: start a new one")
            n = db.execute("SELECT COALESCE(MAX(n), 0) + 1 FROM turns WHERE conversation = ?",
                           (ident,)).fetchone()[0]
            db.execute("INSERT INTO turns VALUES (?, ?, ?, ?, ?)",
                       (ident, n, question, json.dumps(record, ensure_ascii=False), now))

    def listed(self, owner: str) -> list[tuple[str, str]]:
        """(id, title) of the owner's conversations, the last one used first."""
        with closing(self._db()) as db:
            return db.execute("SELECT id, title FROM conversations WHERE owner = ? "
                              "ORDER BY updated DESC, created DESC", (owner,)).fetchall()

    def get(self, ident: str, owner: str) -> Conversation | None:
        with closing(self._db()) as db:
            row = db.execute("SELECT id, title, collection, updated FROM conversations "
                             "WHERE id = ? AND owner = ?", (ident, owner)).fetchone()
            if row is None:
                return None
            turns = db.execute("SELECT question, answer FROM turns WHERE conversation = ? "
                               "ORDER BY n", (ident,)).fetchall()
        return Conversation(*row, turns=[(q, Answer.from_dict(json.loads(a))) for q, a in turns])

    def rename(self, ident: str, owner: str, title: str) -> bool:
        title = " ".join(title.split())[:TITLE_CHARS]
        if not title:
            raise RagchatError("a conversation's title cannot be empty")
        with closing(self._db()) as db, db:
            return bool(db.execute("UPDATE conversations SET title = ? WHERE id = ? AND owner = ?",
                                   (title, ident, owner)).rowcount)

    def delete(self, ident: str, owner: str) -> bool:
        with closing(self._db()) as db, db:
            return bool(db.execute("DELETE FROM conversations WHERE id = ? AND owner = ?",
                                   (ident, owner)).rowcount)
