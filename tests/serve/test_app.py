"""The HTTP API through FastAPI's test client: each endpoint, each limit, each bad request, SSE."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from seqlab.errors import SeqlabError
from seqlab.evaluation.explain import explain
from seqlab.serve.limits import ServeLimits

from serve_helpers import live_server, make_client


def sse_events(text: str) -> list:
    """The ``data:`` payloads of a server-sent event stream, parsed (``[DONE]`` as the string)."""
    events = [block.removeprefix("data: ") for block in text.split("\n\n") if block.strip()]
    return [e if e == "[DONE]" else json.loads(e) for e in events]


class EchoModel:
    """A stand-in model that answers instantly and can be held (``gate``) to keep requests in flight."""

    name, kind, max_tokens = "echo", "chatbot", 50

    def __init__(self):
        self.gate = threading.Event()
        self.gate.set()

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def describe(self) -> dict:
        return {"kind": self.kind, "architecture": "echo", "max_input_tokens": self.max_tokens}

    def check_options(self, options: dict, *, chat: bool = False) -> None:
        if "top_k" in options:
            raise SeqlabError("model 'echo' does not support the option(s) top_k")

    def translate(self, texts, options):
        self.gate.wait(10)
        return [t.upper() for t in texts]

    def stream(self, text, options):
        self.gate.wait(10)
        yield from (w + " " for w in text.upper().split())

    def stream_reply(self, history, message, options):
        yield from (f"{len(history)} turns before ", message)

    def reply(self, history, message, options):
        return "".join(self.stream_reply(history, message, options))

    def explain(self, source, translation):
        raise SeqlabError("attention steps need a Transformer run")


@pytest.fixture
def echo():
    return EchoModel()


# ---------------------------------------------------------------------------------- endpoints


def test_health_and_models_list_every_served_run(client):
    idle = {"batches": 0, "requests": 0}
    assert client.get("/health").json() == {"status": "ok", "models": ["tiny", "gru"], "in_flight": 0,
                                            "batches": {"tiny": idle, "gru": idle}}
    listing = client.get("/v1/models").json()
    assert listing["object"] == "list"
    assert [(m["id"], m["object"], m["kind"], m["architecture"]) for m in listing["data"]] == [
        ("tiny", "model", "translator", "transformer"), ("gru", "model", "translator", "gru")]
    assert listing["data"][0]["heads"] == 2 and listing["data"][0]["layers"] == 1


def test_page_static_files_and_openapi_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and 'src="/static/app.js"' in page.text
    assert "postSSE" in client.get("/static/app.js").text
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/translate", "/v1/chat", "/v1/explain", "/v1/chat/completions", "/v1/models", "/health"} <= set(paths)


@pytest.mark.parametrize("name", ["tiny", "gru"])
def test_translate_equals_the_python_api(client, served_models, name):
    texts = ["Is my brother tall?", "Maria is tired.", "The book is on the table."]
    translator = served_models[name].translator
    for options in ({}, {"beam": 1}, {"beam": 3}):
        r = client.post("/v1/translate", json={"model": name, "texts": texts, **options})
        assert r.status_code == 200, r.text
        assert r.json() == {"model": name, "translations": translator.translate(texts, **options)}
    assert client.get("/health").json()["batches"][name] == {"batches": 3, "requests": 3}


def test_translate_streams_server_sent_events(client, served_models):
    r = client.post("/v1/translate", json={"model": "tiny", "texts": ["Maria is tired."], "stream": True})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    expected = served_models["tiny"].translator.translate("Maria is tired.")
    assert events[-1] == "[DONE]" and events[-2] == {"done": True, "model": "tiny", "translation": expected}
    assert "".join(e["text"] for e in events[:-2]) == expected


def test_chat_remembers_a_bounded_history_per_conversation(echo):
    with make_client({"echo": echo}, limits=ServeLimits(max_history_turns=4)) as c:
        first = c.post("/v1/chat", json={"message": "hi"}).json()
        cid = first["conversation_id"]
        assert first["reply"] == "0 turns before hi" and first["turns"] == 2
        replies = [c.post("/v1/chat", json={"message": m, "conversation_id": cid}).json() for m in ("a", "b")]
        assert [r["reply"] for r in replies] == ["2 turns before a", "4 turns before b"]
        assert replies[-1]["turns"] == 4  # the oldest exchange was dropped
        other = c.post("/v1/chat", json={"message": "x", "conversation_id": "fresh-1"}).json()
        assert other["reply"] == "0 turns before x" and other["conversation_id"] == "fresh-1"
        stream = sse_events(c.post("/v1/chat", json={"message": "s", "conversation_id": cid, "stream": True}).text)
        assert "".join(e["text"] for e in stream[:-2]) == "4 turns before s"
        assert stream[-2]["reply"] == "4 turns before s" and stream[-2]["conversation_id"] == cid


def test_chat_with_a_translator_run_answers_with_its_translation(client, served_models):
    r = client.post("/v1/chat", json={"model": "tiny", "message": "Maria is tired."}).json()
    assert r["reply"] == served_models["tiny"].translator.translate("Maria is tired.")


def test_explain_returns_one_head_of_the_library_explanation(client, served_models):
    model = served_models["tiny"]
    body = {"model": "tiny", "text": "Maria is tired.", "translation": "Maria está cansada .", "side": "cross",
            "layer": 0, "head": 1}
    r = client.post("/v1/explain", json=body).json()
    exp = explain(model.translator.model, model.translator.tokenizers, body["text"], body["translation"])
    assert r["query_tokens"] == exp.tgt_tokens and r["key_tokens"] == exp.src_tokens
    assert r["weights"] == exp.get("cross", 0).head(1)["weights"] and (r["heads"], r["d_k"]) == (2, 8)
    greedy = client.post("/v1/explain", json={"model": "tiny", "text": "Maria is tired."}).json()
    assert greedy["translation"] == model.translator.translate("Maria is tired.", beam=1)
    bad = client.post("/v1/explain", json={**body, "layer": 5})
    assert bad.status_code == 422 and "layer 5 does not exist" in bad.json()["error"]["message"]
    gru = client.post("/v1/explain", json={"model": "gru", "text": "Maria is tired."})
    assert gru.status_code == 400 and "Transformer" in gru.json()["error"]["message"]


# ---------------------------------------------------------------------------------- bad requests


BAD_REQUESTS = [
    # (what, body, status, words in the message)
    ("malformed JSON", b'{"texts": ["a"', 400, "not valid JSON"),
    ("wrong type", {"texts": "a sentence"}, 422, "texts: Input should be a valid list"),
    ("wrong option type", {"texts": ["a"], "beam": "five"}, 422, "beam"),
    ("unknown model", {"texts": ["a"], "model": "nope"}, 404, "unknown model 'nope'; served: tiny, gru"),
    ("empty text", {"texts": ["ok", "  "]}, 422, "texts[1] is empty"),
    ("no texts", {"texts": []}, 422, "texts"),
    ("unknown field", {"texts": ["a"], "bean": 5}, 422, "bean: unknown field"),
    ("option the model lacks", {"texts": ["a"], "beam": 0}, 422, "beam"),
    ("stream of two texts", {"texts": ["a", "b"], "stream": True}, 422, "exactly one text"),
]


@pytest.mark.parametrize("what,body,status,message", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_a_bad_request_gets_a_json_error_saying_what_was_wrong(client, what, body, status, message):
    if isinstance(body, bytes):
        r = client.post("/v1/translate", content=body, headers={"content-type": "application/json"})
    else:
        r = client.post("/v1/translate", json=body)
    assert r.status_code == status
    assert message in r.json()["error"]["message"]
    assert client.get("/health").json()["status"] == "ok"  # and the server is still up


def test_unsupported_options_and_bad_chat_requests_are_refused(echo):
    with make_client({"echo": echo}) as c:
        r = c.post("/v1/translate", json={"texts": ["a"], "top_k": 5})
        assert r.status_code == 400 and "top_k" in r.json()["error"]["message"]
        r = c.post("/v1/chat", json={"message": "hi", "conversation_id": "no spaces allowed"})
        assert r.status_code == 422 and "conversation_id" in r.json()["error"]["message"]
        assert c.post("/v1/chat", json={"message": ""}).status_code == 422


# ---------------------------------------------------------------------------------- limits


def test_a_body_over_the_limit_is_refused_with_413(echo):
    with make_client({"echo": echo}, limits=ServeLimits(max_body_bytes=100)) as c:
        big = json.dumps({"texts": ["word " * 40]})
        r = c.post("/v1/translate", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413 and "100 bytes" in r.json()["error"]["message"]

        def chunks():  # no Content-Length: the body is counted as it arrives
            yield big[:60].encode()
            yield big[60:].encode()

        r = c.post("/v1/translate", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert c.post("/v1/translate", json={"texts": ["fits"]}).json()["translations"] == ["FITS"]


def test_token_text_count_and_new_token_limits(echo):
    limits = ServeLimits(max_input_tokens=5, max_texts=2, max_new_tokens=10)
    with make_client({"echo": echo}, limits=limits) as c:
        r = c.post("/v1/translate", json={"texts": ["one two three four five six"]})
        assert r.status_code == 422 and "texts[0] has 6 tokens, more than the limit of 5" in r.text
        r = c.post("/v1/translate", json={"texts": ["a", "b", "c"]})
        assert r.status_code == 422 and "3 texts, more than the limit of 2" in r.text
        r = c.post("/v1/translate", json={"texts": ["a"], "max_new_tokens": 11})
        assert r.status_code == 422 and "max_new_tokens=11 is more than the limit of 10" in r.text
        r = c.post("/v1/chat", json={"message": "one two three four five six"})
        assert r.status_code == 422 and "message has 6 tokens" in r.text


def test_the_models_own_position_limit_caps_the_input(client):
    r = client.post("/v1/translate", json={"model": "tiny", "texts": ["word " * 70]})
    assert r.status_code == 422 and "more than the limit of 63" in r.json()["error"]["message"]


def test_requests_past_the_in_flight_limit_get_503_with_retry_after(echo):
    echo.gate.clear()  # requests stay in flight until the gate opens
    from seqlab.serve.app import create_app

    with live_server(create_app({"echo": echo}, limits=ServeLimits(max_in_flight=2))) as url:
        with ThreadPoolExecutor(2) as pool:
            held = [pool.submit(httpx.post, f"{url}/v1/translate", json={"texts": [t]}, timeout=30) for t in "ab"]
            for _ in range(500):  # until both are counted in flight
                if httpx.get(f"{url}/health").json()["in_flight"] == 2:
                    break
                threading.Event().wait(0.01)
            refused = httpx.post(f"{url}/v1/translate", json={"texts": ["c"]})
            echo.gate.set()
            answers = [f.result().json()["translations"] for f in held]
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "busy" in refused.json()["error"]["message"]
        assert answers == [["A"], ["B"]]
        assert httpx.post(f"{url}/v1/translate", json={"texts": ["d"]}).json()["translations"] == ["D"]


# ---------------------------------------------------------------------------------- concurrency


@pytest.mark.slow
def test_concurrent_requests_get_the_replies_they_get_alone(live_url):
    requests = [{"model": model, "texts": [text], "beam": beam}
                for model in ("tiny", "gru") for beam in (1, 2)
                for text in ("Is my brother tall?", "Maria is tired.")]
    requests.append({"model": "tiny", "texts": ["Maria is tired.", "Is my brother tall?"], "beam": 1})

    def post(body):
        return httpx.post(f"{live_url}/v1/translate", json=body, timeout=60).json()

    alone = [post(body) for body in requests]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(post, requests * 2))
    assert together == alone * 2
