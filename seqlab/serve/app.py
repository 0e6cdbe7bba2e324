"""The HTTP API and the web page, as one FastAPI application.

    GET  /                     the web page (seqlab/serve/static/)
    GET  /health               {"status": "ok", "models": [...]}
    GET  /v1/models            the served models, in OpenAI's list format (plus seqlab's facts)
    POST /v1/translate         {"texts": [...], "model"?, options...} -> {"translations": [...]}
    POST /v1/chat              {"message", "conversation_id"?, "model"?, options...} -> {"reply", ...}
    POST /v1/explain           {"text", "side", "layer", "head"} -> the attention steps of one head
    POST /v1/chat/completions  OpenAI's chat completions (seqlab.serve.openai_compat)
    GET  /docs, /openapi.json  FastAPI's documentation and schema

``"stream": true`` on translate and chat answers with server-sent events: ``data: {"text": piece}``
per piece, then ``data: {"done": true, ...}`` and ``data: [DONE]``.

Every model call runs in that model's worker thread (:class:`~seqlab.serve.batcher.Batcher`);
deterministic translate requests with equal options are merged there into one batch. Every refusal
is a 4xx/5xx JSON body ``{"error": {"message": ...}}`` (:mod:`seqlab.serve.limits`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from seqlab import __version__
from seqlab.errors import SeqlabError
from seqlab.serve.batcher import Batcher, Job
from seqlab.serve.conversations import Conversations
from seqlab.serve.limits import ApiError, BodyLimit, InFlight, ServeLimits, error_body
from seqlab.serve.models import ServedModel
from seqlab.serve.schemas import ChatRequest, ExplainRequest, TranslateRequest, option_values

__all__ = ["ServerState", "create_app", "sse"]

STATIC = Path(__file__).parent / "static"


@dataclass
class ServerState:
    """What the routes share: the models, their batchers, the limits and the conversations."""

    models: dict[str, ServedModel]
    batchers: dict[str, Batcher]
    limits: ServeLimits
    in_flight: InFlight
    conversations: Conversations
    started: float

    def model(self, name: str | None, *, prefer: str = "translator", param: str = "model") -> ServedModel:
        """The model called ``name``; by default the first of kind ``prefer``, else the first served."""
        if name is None:
            return next((m for m in self.models.values() if m.kind == prefer), next(iter(self.models.values())))
        if name not in self.models:
            raise ApiError(404, f"unknown model {name!r}; served: {', '.join(self.models)}", param=param,
                           kind="model_not_found")
        return self.models[name]

    def check_length(self, model: ServedModel, text: str, param: str) -> None:
        limit = min(self.limits.max_input_tokens, model.max_tokens)
        n = model.count_tokens(text)
        if n > limit:
            raise ApiError(422, f"{param} has {n} tokens, more than the limit of {limit}", param=param)
        if n == 0:
            raise ApiError(422, f"{param} has no tokens the model knows", param=param)

    def check_options(self, model: ServedModel, options: dict, *, chat: bool) -> None:
        new = options.get("max_new_tokens")
        if new is not None and new > self.limits.max_new_tokens:
            raise ApiError(422, f"max_new_tokens={new} is more than the limit of {self.limits.max_new_tokens}",
                           param="max_new_tokens")
        try:
            model.check_options(options, chat=chat)
        except SeqlabError as err:
            raise ApiError(400, str(err)) from None

    async def call(self, model: ServedModel, fn: Callable[[], object]) -> object:
        """Run ``fn()`` alone in ``model``'s worker thread and await its result."""
        return (await self.batchers[model.name].run(None, [None], lambda _: [fn()]))[0]

    async def stream(self, model: ServedModel, pieces: Callable[[], Iterator[str]]) -> AsyncIterator[str]:
        """Iterate ``pieces()`` in ``model``'s worker thread; yield each piece here as it comes.

        When the consumer stops early (the client went away), the worker stops at the next piece.
        """
        loop = asyncio.get_running_loop()
        inbox: asyncio.Queue = asyncio.Queue()
        stop = threading.Event()

        def produce(_texts: list) -> list:
            try:
                for piece in pieces():
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(inbox.put_nowait, ("piece", piece))
                loop.call_soon_threadsafe(inbox.put_nowait, ("end", None))
            except Exception as err:  # noqa: BLE001 - reported to the client as an SSE error
                loop.call_soon_threadsafe(inbox.put_nowait, ("error", err))
            return [None]

        self.batchers[model.name].submit(Job(None, [None], produce, lambda _: None))
        try:
            while True:
                kind, value = await inbox.get()
                if kind == "end":
                    return
                if kind == "error":
                    raise value
                yield value
        finally:
            stop.set()


def sse(data: dict | str) -> str:
    """One server-sent event carrying ``data`` (JSON unless already a string)."""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"


def sse_response(events: AsyncIterator[str], in_flight: InFlight) -> StreamingResponse:
    """Stream ``events``; the in-flight slot taken for the request is released when they end."""

    async def body() -> AsyncIterator[str]:
        try:
            async for event in events:
                yield event
        except (SeqlabError, ValueError) as err:
            yield sse(error_body(str(err)))
        finally:
            in_flight.release()

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError) -> JSONResponse:
        return JSONResponse(error_body(err.message, kind=err.kind, param=err.param), status_code=err.status,
                            headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = err.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return JSONResponse(error_body("the request body is not valid JSON", code="json_invalid"),
                                status_code=400)
        lines = []
        for p in problems:
            where = ".".join(str(x) for x in p.get("loc", ()) if x != "body") or "body"
            message = p.get("msg", "invalid").removeprefix("Value error, ")
            if p.get("type") == "extra_forbidden":
                message = "unknown field"
            lines.append(f"{where}: {message}")
        first = problems[0].get("loc", ()) if problems else ()
        param = ".".join(str(x) for x in first if x != "body") or None
        return JSONResponse(error_body("; ".join(lines), param=param), status_code=422)

    @app.exception_handler(SeqlabError)
    async def seqlab_error(request: Request, err: SeqlabError) -> JSONResponse:
        return JSONResponse(error_body(str(err)), status_code=400)


def create_app(models: dict[str, ServedModel], *, limits: ServeLimits | None = None, max_batch: int = 32,
               batch_wait: float = 0.005) -> FastAPI:
    """The application serving ``models`` (by name).

    Args:
        models: from :func:`seqlab.serve.models.load_models`.
        limits: what requests may ask (default :class:`ServeLimits`).
        max_batch: most texts one model decodes in one batch (1: no dynamic batching).
        batch_wait: seconds a model's worker waits for more requests to batch with the first.
    """
    from seqlab.serve.openai_compat import install_openai_routes

    limits = limits or ServeLimits()
    state = ServerState(
        models=models,
        batchers={name: Batcher(name, max_batch=max_batch, wait=batch_wait) for name in models},
        limits=limits,
        in_flight=InFlight(limits.max_in_flight),
        conversations=Conversations(max_conversations=limits.max_conversations,
                                    max_turns=limits.max_history_turns, ttl=limits.conversation_ttl),
        started=time.time(),
    )
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        for batcher in state.batchers.values():  # the jobs already submitted finish first
            batcher.close()

    app = FastAPI(title="seqlab", version=__version__, lifespan=lifespan,
                  description="Translate, chat and look inside the attention of seqlab runs.")
    app.state.seqlab = state
    app.add_middleware(BodyLimit, limit=limits.max_body_bytes)
    _install_errors(app)

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/favicon.ico", include_in_schema=False)
    async def no_icon() -> Response:
        return Response(status_code=204)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "models": list(models), "in_flight": state.in_flight.count,
                "batches": {name: {"batches": b.batches_run, "requests": b.jobs_run} for name, b in state.batchers.items()}}

    @app.get("/v1/models")
    async def list_models() -> dict:
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": int(state.started), "owned_by": "seqlab", **m.describe()}
            for name, m in models.items()]}

    @app.post("/v1/translate")
    async def translate(body: TranslateRequest):
        model = state.model(body.model)
        if len(body.texts) > limits.max_texts:
            raise ApiError(422, f"{len(body.texts)} texts, more than the limit of {limits.max_texts} per request",
                           param="texts")
        if body.stream and len(body.texts) != 1:
            raise ApiError(422, "stream=true translates exactly one text", param="texts")
        for i, text in enumerate(body.texts):
            state.check_length(model, text, f"texts[{i}]")
        options = option_values(body)
        state.check_options(model, options, chat=False)
        state.in_flight.acquire()
        if body.stream:
            async def events() -> AsyncIterator[str]:
                pieces = []
                async for piece in state.stream(model, lambda: model.stream(body.texts[0], options)):
                    pieces.append(piece)
                    yield sse({"text": piece})
                yield sse({"done": True, "model": model.name, "translation": "".join(pieces)})
                yield sse("[DONE]")

            return sse_response(events(), state.in_flight)
        try:
            # Deterministic decoding with equal options gives the same result alone or in a batch:
            # such requests may be merged; seeded or unseeded samples run alone.
            key = None if options.get("strategy") == "sample" else tuple(sorted(options.items()))
            out = await state.batchers[model.name].run(key, body.texts, lambda texts: model.translate(texts, options))
        finally:
            state.in_flight.release()
        return {"model": model.name, "translations": out}

    @app.post("/v1/chat")
    async def chat(body: ChatRequest):
        model = state.model(body.model, prefer="chatbot")
        state.check_length(model, body.message, "message")
        options = option_values(body)
        state.check_options(model, options, chat=True)
        conversation_id, history = state.conversations.history(body.conversation_id)
        state.in_flight.acquire()
        if body.stream:
            async def events() -> AsyncIterator[str]:
                pieces = []
                async for piece in state.stream(model, lambda: model.stream_reply(history, body.message, options)):
                    pieces.append(piece)
                    yield sse({"text": piece})
                reply = "".join(pieces)
                turns = state.conversations.add(conversation_id, body.message, reply)
                yield sse({"done": True, "model": model.name, "conversation_id": conversation_id, "reply": reply,
                           "turns": turns})
                yield sse("[DONE]")

            return sse_response(events(), state.in_flight)
        try:
            reply = await state.call(model, lambda: model.reply(history, body.message, options))
        finally:
            state.in_flight.release()
        turns = state.conversations.add(conversation_id, body.message, reply)
        return {"model": model.name, "conversation_id": conversation_id, "reply": reply, "turns": turns}

    @app.post("/v1/explain")
    async def explain(body: ExplainRequest):
        model = state.model(body.model)
        state.check_length(model, body.text, "text")
        if body.translation is not None and body.translation.strip():
            state.check_length(model, body.translation, "translation")
        with state.in_flight.slot():
            exp = await state.call(model, lambda: model.explain(body.text, body.translation or None))
        try:
            steps = exp.get(body.side, body.layer)
            head = steps.head(body.head)
        except SeqlabError as err:
            raise ApiError(422, str(err)) from None
        queries = exp.src_tokens if body.side == "encoder" else exp.tgt_tokens
        keys = exp.tgt_tokens if body.side == "decoder" else exp.src_tokens
        return {"model": model.name, "side": body.side, "layer": body.layer, "head": body.head,
                "layers": len(exp.steps[body.side]), "heads": steps.q.size(0), "d_k": steps.q.size(-1),
                "translation": exp.translation, "src_tokens": exp.src_tokens, "tgt_tokens": exp.tgt_tokens,
                "predicted": exp.predicted, "query_tokens": queries, "key_tokens": keys, **head}

    install_openai_routes(app, state)

    return app
