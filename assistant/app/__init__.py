"""The Textual chat app (the only part of Shopkeeper that imports Textual)."""

from assistant.app.app import ShopkeeperApp, create_app

__all__ = ["ShopkeeperApp", "create_app"]
