"""A small OpenAI-compatible chat server on loopback for the judge's tests: it answers like a judge, or misbehaves on
purpose, chosen by the request's ``model``:

- ``judge``: a reply in the format each judge prompt asks for, decided by whether the prediction contains the
  correct answer (a stand-in judge that is simple to reason about, over real HTTP);
- ``slow``: sleeps ``SLOW_S`` before answering; ``error500``: always HTTP 500; ``flaky``: 500 on the first call
  of each conversation, then a judge reply; ``garbage``: a 200 whose body is not JSON; ``drop``: closes the
  connection without answering; ``prose``: a 200 whose reply gives no verdict; ``auth``: 401; other models: 404.

It counts the calls per model and records every request body, so tests can check what was sent.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SLOW_S = 5.0


def judge_reply(messages: list[dict]) -> str:
    user = messages[-1]["content"]
    if "Model Prediction:" in user:  # TempCompass: Correct / Incorrect
        gold = re.search(r"Ground-Truth Answer: (.*)\n", user).group(1)
        pred = user.rsplit("Model Prediction:", 1)[1].strip()
        return "Correct" if gold.split(". ")[-1].lower() in pred.lower() else "Incorrect"
    if "Video Description:" in user:  # TempCompass captioning: answer the multiple-choice question
        caption = user.split("Video Description:", 1)[1].split("\nMulti-Choice Question:")[0].lower()
        options = re.findall(r"^([A-D]\. .*)$", user, re.M)
        chosen = next((o for o in options if o[3:].lower() in caption), "None of the choices are correct")
        return f"Reasoning: read from the caption.\nAnswer: {chosen}"
    answer = re.search(r"Correct Answer: (.*)\n", user).group(1)
    preds = re.findall(r"Predicted Answer(?: to Question \d)?: (.*)\n", user)
    hit = all(answer.lower() in p.lower() for p in preds)
    if "'pred'" in user:
        return str({"pred": "yes" if hit else "no", "score": 4 if hit else 1})
    return str({"score": 4 if hit else 1})


class ChatServer:
    def __init__(self):
        self.calls: dict[str, int] = {}
        self.bodies: list[dict] = []
        self.seen: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                self._json(200, {"object": "list", "data": [{"id": "judge", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                model = body.get("model", "")
                with threading.Lock():
                    server.calls[model] = server.calls.get(model, 0) + 1
                    server.bodies.append(body)
                key = json.dumps(body["messages"])
                if model == "slow":
                    time.sleep(SLOW_S)
                if model == "error500" or (model == "flaky" and key not in server.seen):
                    server.seen.add(key)
                    return self._json(500, {"error": {"message": "overloaded", "type": "server_error"}})
                if model == "garbage":
                    return self._raw(200, b"<html>not json at all", "text/html")
                if model == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                if model == "auth":
                    return self._json(401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
                if model not in ("judge", "slow", "flaky", "prose"):
                    return self._json(404, {"error": {"message": f"model {model} not found", "type": "not_found"}})
                content = "I would rather not say." if model == "prose" else judge_reply(body["messages"])
                self._json(200, {"id": "c1", "object": "chat.completion", "created": int(time.time()), "model": model,
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": content}}],
                                 "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})

            def _json(self, code, data):
                self._raw(code, json.dumps(data).encode(), "application/json")

            def _raw(self, code, data, kind):
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "ChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
