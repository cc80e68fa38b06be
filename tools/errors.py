"""The error hierarchy shared by the shop and the application.

Every error a user can act on is a :class:`ShopkeeperError`: it has a short ``title`` and a message that says what
to do. The CLI prints ``title: message`` to stderr and exits non-zero; the chat app shows one notification.
Anything else that escapes is a bug and is allowed to fail loudly.
"""

from __future__ import annotations


class ShopkeeperError(Exception):
    """Base class for errors the user can do something about."""

    title = "Shopkeeper error"

    def __init__(self, message: str, *, title: str | None = None) -> None:
        super().__init__(message)
        if title is not None:
            self.title = title

    def __str__(self) -> str:  # keeps `str(err)` the sentence itself, without the title
        return self.args[0] if self.args else self.title


class ShopNotFoundError(ShopkeeperError):
    title = "Shop not found"


class ShopLockedError(ShopkeeperError):
    title = "Shop is busy"


class ImportFileError(ShopkeeperError):
    """The file as a whole cannot be imported (nothing was changed in the shop)."""

    title = "Cannot import file"


class ColumnMappingError(ImportFileError):
    title = "Cannot map columns"


class ConfigError(ShopkeeperError):
    title = "Configuration problem"
