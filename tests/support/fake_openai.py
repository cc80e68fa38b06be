"""A scripted OpenAI-compatible chat server on 127.0.0.1 that records what it receives.

Each request pops the next scripted reply: a dict ``{"content": str}`` or ``{"tool_calls": [(name, args), …]}``
for a normal answer, or a fault: ``{"status": 429, "headers": {...}}``, ``{"status": 500}``, ``{"hang": seconds}``,
``{"cut": True}`` (connection dropped mid-stream), ``{"garbage": True}`` (malformed JSON). Streaming
(``"stream": true``) is answered as server-sent events like the real API.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeOpenAI:
    def __init__(self, script: list[dict[str, Any]] | None = None) -> None:
        self.script = list(script or [])
        self.requests: list[dict[str, Any]] = []
        self.raw_bodies: list[bytes] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                fake.raw_bodies.append(body)
                request = json.loads(body)
                fake.requests.append(request)
                step = fake.script.pop(0) if fake.script else {"content": "(script ran out)"}
                if "hang" in step:
                    time.sleep(step["hang"])
                    return
                if "status" in step:
                    payload = json.dumps({"error": {"message": step.get("message", "scripted failure"),
                                                    "type": "server_error"}}).encode()
                    self.send_response(step["status"])
                    for k, v in step.get("headers", {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if step.get("garbage"):
                    payload = b'{"id": "x", "choices": [ {"message": '
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                message = _message(step)
                if request.get("stream"):
                    self._stream(message, cut=step.get("cut", False))
                else:
                    payload = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                                          "model": request.get("model", "fake"),
                                          "choices": [{"index": 0, "message": message,
                                                       "finish_reason": "tool_calls" if message.get("tool_calls")
                                                       else "stop"}]}).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            def _stream(self, message: dict[str, Any], cut: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()

                def send(delta: dict[str, Any], finish: str | None = None) -> None:
                    chunk = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "fake",
                             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()

                send({"role": "assistant", "content": ""})
                text = message.get("content") or ""
                words = text.split(" ")
                for i, word in enumerate(words):
                    if cut and i == len(words) // 2:
                        self.wfile.flush()
                        self.connection.shutdown(2)  # drop the connection mid-answer
                        return
                    send({"content": word + (" " if i < len(words) - 1 else "")})
                for i, call in enumerate(message.get("tool_calls", [])):
                    send({"tool_calls": [{"index": i, "id": call["id"], "type": "function",
                                          "function": {"name": call["function"]["name"],
                                                       "arguments": call["function"]["arguments"]}}]})
                send({}, "tool_calls" if message.get("tool_calls") else "stop")
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

        return Handler


def _message(step: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": step.get("content")}
    if step.get("tool_calls"):
        message["tool_calls"] = [{"id": f"call_{i + 1}", "type": "function",
                                  "function": {"name": name, "arguments": json.dumps(args)}}
                                 for i, (name, args) in enumerate(step["tool_calls"])]
    return message
