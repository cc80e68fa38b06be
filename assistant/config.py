"""Settings, built once at the entry point and passed down (no import-time singletons).

Precedence, highest first: arguments (``load_settings(**overrides)``) > environment (``SHOPKEEPER_…``, ``__`` for
nesting, e.g. ``SHOPKEEPER_PROVIDER__MODEL``; plus the standard ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``) > the TOML
file (``$XDG_CONFIG_HOME/shopkeeper/config.toml``, or ``SHOPKEEPER_CONFIG``) > defaults.

Example ``config.toml``::

    language = "auto"
    privacy = "redacted"

    [provider]
    name = "openai"
    base_url = "https://api.deepseek.com/v1"
    model = "deepseek-chat"
    timeout = 60
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from tools.errors import ConfigError

APP = "shopkeeper"


def config_path() -> Path:
    """The TOML settings file (it need not exist)."""
    override = os.environ.get("SHOPKEEPER_CONFIG")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir(APP, appauthor=False)) / "config.toml"


class ProviderSettings(BaseModel):
    """Which chat model explains the results."""

    name: Literal["auto", "openai", "local"] = Field(
        "auto", description="auto: a configured remote provider if there is one, else the local model.")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1.")
    model: str | None = Field(None, description="Model name at that endpoint.")
    api_key: SecretStr | None = Field(None, description="Key for the endpoint; OPENAI_API_KEY is used if unset.")
    timeout: float = Field(60.0, gt=0, description="Seconds before a request to the model is abandoned.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries (with backoff) on rate limits and server errors.")
    max_tokens: int = Field(1024, ge=16, le=32768, description="Longest reply the model may write.")


class LocalModelSettings(BaseModel):
    """The in-process GGUF model used when no remote provider is configured."""

    variant: Literal["1.5b", "0.5b"] = "1.5b"
    path: Path | None = Field(None, description="Any GGUF chat model file; overrides the packaged model.")
    n_ctx: int = Field(8192, ge=512, description="Context window in tokens (memory grows with it).")
    threads: int | None = Field(None, ge=1, description="Decoding threads; default 1 on 2 cores, else cores - 1.")


class AgentSettings(BaseModel):
    """Limits of one question."""

    max_tool_rounds: int = Field(6, ge=1, le=20, description="Model-tool rounds before falling back to tools' "
                                                             "summaries.")
    time_budget_s: float = Field(180.0, gt=0, description="Seconds allowed for one question, retries included.")
    history_turns: int = Field(4, ge=0, le=50, description="Earlier turns of the conversation the model sees.")


class Settings(BaseSettings):
    """All of Shopkeeper's settings."""

    model_config = SettingsConfigDict(env_prefix="SHOPKEEPER_", env_nested_delimiter="__", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir(APP, appauthor=False)),
                           description="Where named shops live (shops/<name>/).")
    shop: str = Field("demo", description="Default shop: a name under data_dir/shops, or a path.")
    language: Literal["auto", "zh", "en"] = "auto"
    privacy: Literal["local-only", "redacted"] = Field(
        "redacted", description="local-only refuses remote providers; redacted sends only redacted data.")
    provider: ProviderSettings = Field(default_factory=ProviderSettings)
    local: LocalModelSettings = Field(default_factory=LocalModelSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)

    @property
    def shops_dir(self) -> Path:
        return self.data_dir / "shops"

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_path()))


def load_settings(**overrides: Any) -> Settings:
    """Build the settings (see the module docstring for precedence).

    Raises:
        ConfigError: the file or the environment holds an invalid value; the message names it.
    """
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise ConfigError(f"Invalid setting ({problems}). Check {config_path()} and SHOPKEEPER_* variables.") from err
    except ValueError as err:  # e.g. a TOML syntax error
        raise ConfigError(f"Cannot read {config_path()}: {err}") from err
    provider = settings.provider
    if provider.api_key is None and os.environ.get("OPENAI_API_KEY"):
        provider.api_key = SecretStr(os.environ["OPENAI_API_KEY"])
    if provider.base_url is None and os.environ.get("OPENAI_BASE_URL"):
        provider.base_url = os.environ["OPENAI_BASE_URL"]
    return settings
