"""Shopkeeper: the application (settings, providers, agent, CLI; the Textual app under assistant/app/)."""

__version__ = "0.1.0"
