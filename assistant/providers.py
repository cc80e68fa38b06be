"""Model providers: one settings object (``assistant.config.ProviderSettings``), one factory, one error mapping.

* ``openai``: any OpenAI-compatible endpoint (OpenAI, DeepSeek, Qwen/DashScope compatible mode, vLLM, Ollama, a
  llama.cpp server) through ``langchain-openai``, with an explicit timeout and retries with backoff.
* ``local``: the packaged GGUF model run in-process by llama.cpp (``assistant/local_llm.py``); no network.

``auto`` picks a configured remote provider when the user set one (a base URL or an API key), else the local model,
else says how to set one up. ``privacy = "local-only"`` refuses remote providers outright.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from assistant.config import Settings
from tools.errors import ConfigError, ShopkeeperError


class ProviderError(ShopkeeperError):
    """The model could not answer (unreachable, bad key, rate limit, timeout…); the message says what to do."""

    title = "Model provider"


@dataclass(frozen=True)
class ProviderChoice:
    name: str  # "openai" | "local"
    model: str  # what is shown to the user
    remote: bool


def choose_provider(settings: Settings) -> ProviderChoice:
    """Decide which provider ``settings`` mean, without creating anything."""
    p = settings.provider
    name = p.name
    if name == "auto":
        name = "openai" if (p.base_url or p.api_key) else "local"
    if name == "openai":
        if settings.privacy == "local-only":
            raise ConfigError("Privacy is set to local-only, so remote model providers are refused. Use "
                              "`--provider local` or change `privacy` in the settings.")
        return ProviderChoice("openai", p.model or "gpt-4o-mini", remote=True)
    local = settings.local
    return ProviderChoice("local", str(local.path) if local.path else f"qwen2.5-coder-{local.variant}-instruct",
                          remote=False)


def make_chat_model(settings: Settings, *, runtime: Any = None, shop: Any = None) -> Any:
    """Create the chat model ``settings`` describe.

    Args:
        settings: the provider settings.
        runtime: an existing LocalLlamaRuntime to reuse (local provider).
        shop: for a remote provider, the shop whose customer ids are pseudonymised and whose ``audit.log``
            records every request (``assistant.privacy``). Without a shop the remote model is used as is, which
            only tests and library users who handle privacy themselves should do.
    """
    choice = choose_provider(settings)
    if choice.name == "openai":
        return _openai(settings, shop)
    return _local(settings, runtime)


def _openai(settings: Settings, shop: Any = None) -> Any:
    from langchain_openai import ChatOpenAI

    p = settings.provider
    key = p.api_key.get_secret_value() if p.api_key else None
    if key is None and not p.base_url:
        raise ConfigError("No API key for the openai provider. Set OPENAI_API_KEY (or provider.api_key in the "
                          "settings), or point provider.base_url at a local server such as Ollama.")
    clients: dict[str, Any] = {}
    if shop is not None:
        from assistant.privacy import AuditLog, http_clients

        clients["http_client"], clients["http_async_client"] = http_clients(AuditLog(shop.audit_path), p.timeout)
    model = ChatOpenAI(
        model=p.model or "gpt-4o-mini",
        base_url=p.base_url,
        # Local OpenAI-compatible servers (Ollama, vLLM, llama.cpp) accept any key, but the client needs one.
        api_key=key or "not-needed",
        timeout=p.timeout,
        max_retries=p.max_retries,
        max_tokens=p.max_tokens,
        temperature=0,
        streaming=True,
        use_responses_api=False,
        **clients,
    )
    if shop is None:
        return model
    from assistant.privacy import Pseudonymizer, private_model

    with shop.connect(read_only=True) as con:
        ids = [row[0] for row in con.execute("SELECT customer_id FROM customers").fetchall()]
    return private_model(model, Pseudonymizer(ids))


def _local(settings: Settings, runtime: Any) -> Any:
    if importlib.util.find_spec("xllamacpp") is None:
        raise ConfigError("No model is configured: the local model is not installed and no remote provider is "
                          "set. Either install it (`pip install -e '.[local]'`) or set OPENAI_API_KEY / "
                          "provider.base_url (see README, Configuration).")
    from assistant.local_llm import ChatLocalLlama, LocalLlamaRuntime

    local = settings.local
    if runtime is None:
        runtime = LocalLlamaRuntime(local.path, variant=local.variant, n_ctx=local.n_ctx, n_threads=local.threads)
    return ChatLocalLlama(runtime=runtime, max_tokens=512, streaming=True)


def translate_error(err: BaseException, settings: Settings | None = None) -> ShopkeeperError | None:
    """One sentence that says what to do, for the errors a model call can raise; None if it is not one."""
    if isinstance(err, ShopkeeperError):
        return err
    url = (settings.provider.base_url if settings else None) or "the configured endpoint"
    timeout = settings.provider.timeout if settings else None
    try:
        import openai
    except ImportError:  # the openai client is a dependency of langchain-openai; without it only local errors
        openai = None
    if openai is not None:
        if isinstance(err, openai.APITimeoutError):
            return ProviderError(f"The model at {url} did not answer within {timeout or '?'} s. Try again, or raise "
                                 "provider.timeout.")
        if isinstance(err, openai.APIConnectionError):
            return ProviderError(f"Can't reach the model at {url}: is the server running and the address right?")
        if isinstance(err, openai.AuthenticationError):
            return ProviderError("The model provider rejected the API key. Check OPENAI_API_KEY or "
                                 "provider.api_key.")
        if isinstance(err, openai.RateLimitError):
            return ProviderError("The model provider is rate-limiting requests (429). Wait a minute and try "
                                 "again, or use another provider.")
        if isinstance(err, openai.NotFoundError):
            return ProviderError(f"The provider does not know the model or endpoint ({_first_line(err)}). Check "
                                 "provider.model and provider.base_url.")
        if isinstance(err, openai.APIStatusError):
            return ProviderError(f"The model provider failed with HTTP {err.status_code}: {_first_line(err)}. "
                                 "Try again later.")
        if isinstance(err, openai.APIError):
            return ProviderError(f"The model provider returned an error: {_first_line(err)}.")
    if isinstance(err, ValueError) and "No generation chunks were returned" in str(err):
        # LangChain's wording when a streamed reply could not be parsed into anything (malformed response)
        return ProviderError(f"The model at {url} sent a reply that could not be read (malformed or empty "
                             "stream). Try again; if it persists, check that the server speaks the OpenAI API.")
    try:
        from assistant.local_llm import LocalModelError
    except ImportError:
        LocalModelError = ()  # noqa: N806
    if LocalModelError and isinstance(err, LocalModelError):
        return ProviderError(f"The local model failed: {_first_line(err)}")
    return None


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
