"""The shop workspace: one folder per shop, holding its DuckDB store and its model artifacts.

```
<shop>/
  shop.duckdb      canonical tables (tools/schema.py), import log, quarantine
  models/          checkpoints with their metrics
  index/           review search index and its id map
  history.sqlite   conversations
  audit.log        what was sent to a remote model
```

Connections are short-lived: every operation opens the file, does its work and closes it, so the CLI and the chat
app can take turns on one shop. DuckDB lets one process write at a time; when another process holds the file we
wait briefly, then raise :class:`~tools.errors.ShopLockedError` with a sentence that says what to do.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools import schema
from tools.errors import ShopLockedError, ShopNotFoundError

if TYPE_CHECKING:
    import duckdb

DB_NAME = "shop.duckdb"
_LOCK_WAIT_S = 3.0

# DuckDB shares one database instance per file inside a process, and refuses a connection whose configuration
# differs from the open ones (query_data opens with external access off). Connections to a shop from this
# process are therefore taken one at a time; each lives for one short operation.
_process_locks: dict[Path, threading.RLock] = {}
_process_locks_guard = threading.Lock()


def process_lock(db_path: Path) -> threading.RLock:
    """The lock that serialises this process's connections to ``db_path``."""
    with _process_locks_guard:
        return _process_locks.setdefault(db_path, threading.RLock())


def _private_dir(path: Path) -> None:
    """Create ``path`` (and parents) readable by the owner only: shops hold customer data."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except OSError:  # e.g. a folder on a file system without permissions; the data is still written
        pass


@dataclass(frozen=True)
class Shop:
    """A shop workspace folder. Cheap to create; nothing is opened until :meth:`connect`."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def db_path(self) -> Path:
        return self.path / DB_NAME

    @property
    def models_dir(self) -> Path:
        return self.path / "models"

    @property
    def index_dir(self) -> Path:
        return self.path / "index"

    @property
    def history_path(self) -> Path:
        return self.path / "history.sqlite"

    @property
    def audit_path(self) -> Path:
        return self.path / "audit.log"

    def exists(self) -> bool:
        return self.db_path.exists()

    @classmethod
    def create(cls, path: Path) -> Shop:
        """Create the folder and the schema if needed, and return the shop (idempotent)."""
        shop = cls(Path(path).expanduser().resolve())
        _private_dir(shop.path)
        for sub in (shop.models_dir, shop.index_dir):
            _private_dir(sub)
        with shop.connect(create=True) as con:
            con.execute(schema.DDL)
            con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(schema.SCHEMA_VERSION)])
        return shop

    @classmethod
    def open(cls, path: Path) -> Shop:
        """Return an existing shop, or raise a :class:`ShopNotFoundError` that says how to make one."""
        shop = cls(Path(path).expanduser().resolve())
        if not shop.exists():
            raise ShopNotFoundError(
                f"No shop at {shop.path}. Create one with `shopkeeper demo` (the bundled demo shop) or "
                f"`shopkeeper import FILE --kind orders --shop {shop.path}`.")
        return shop

    @contextmanager
    def connect(self, *, read_only: bool = False, create: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open a short-lived connection, closed on exit.

        Args:
            read_only: open without write access (several readers may share the file).
            create: allow creating the database file; otherwise a missing shop is an error.
        """
        if not create and not self.exists():
            raise ShopNotFoundError(f"No shop at {self.path}. Run `shopkeeper demo` or `shopkeeper import` first.")
        with process_lock(self.db_path):
            con = self._open(read_only)
            try:
                con.execute("SET enable_progress_bar = false")  # progress is ours to show, on stderr
                yield con
            finally:
                con.close()

    def _open(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        import duckdb

        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                return duckdb.connect(str(self.db_path), read_only=read_only)
            except duckdb.IOException as err:
                if "lock" not in str(err).lower():
                    raise
                if time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                raise ShopLockedError(_lock_message(self.db_path, str(err))) from err

    def table_counts(self, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        return {t: scalar(con, f"SELECT count(*) FROM {t}") for t in schema.TABLES}


def _lock_message(db_path: Path, detail: str) -> str:
    pid = re.search(r"PID (\d+)", detail)
    who = f"another process (PID {pid.group(1)})" if pid else "another process"
    return (f"{db_path} is in use by {who}, probably a running import, training or chat. "
            "Wait for it to finish or close it, then try again.")


def default_shops_dir() -> Path:
    """The folder where named shops live: ``$XDG_DATA_HOME/shopkeeper/shops`` (platform equivalent elsewhere)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("shopkeeper", appauthor=False)) / "shops"


def resolve_shop_path(shop: str | os.PathLike[str] | None, default_name: str = "demo",
                      shops_dir: Path | None = None) -> Path:
    """Turn ``--shop`` into a folder: a path (anything with a separator, or ``.``) or a name under the shops dir."""
    base = shops_dir or default_shops_dir()
    if shop is None:
        return base / default_name
    text = os.fspath(shop)
    if os.sep in text or "/" in text or text.startswith(".") or text.startswith("~"):
        return Path(text).expanduser().resolve()
    return base / text


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The first column of the first row (or None). Fetches the whole result: DuckDB 2 refuses new work on a
    connection while a result is only partly read."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
    """Run a query and return its rows as dicts (small results only)."""
    cur = con.execute(sql, params or [])
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]
