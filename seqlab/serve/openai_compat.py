"""OpenAI's chat completions convention, so existing clients talk to a seqlab run unchanged.

    POST /v1/chat/completions   {"model", "messages": [{"role", "content"}, ...], "stream"?, ...}

The last message must be the user's; the user and assistant messages before it are the
conversation's history (system messages are read and ignored: a seqlab chatbot has no
instructions). ``temperature`` above 0 samples (with ``top_p`` and ``seed``), otherwise the run's
default decoding; ``max_tokens`` caps the reply. A non-streaming answer is a ``chat.completion``
object; ``"stream": true`` sends ``chat.completion.chunk`` events (the role first, then one
content delta per piece, then an empty delta with ``finish_reason``) and ``data: [DONE]``.
``GET /v1/models`` (in :mod:`seqlab.serve.app`) already answers in OpenAI's list format.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

from fastapi import FastAPI

from seqlab.serve.limits import ApiError
from seqlab.serve.schemas import ChatCompletionRequest

__all__ = ["install_openai_routes"]


def _split_messages(body: ChatCompletionRequest) -> tuple[list[str], str]:
    """(history, last user message) of a chat completion request."""
    turns = [m for m in body.messages if m.role in ("user", "assistant")]
    if not turns or turns[-1].role != "user":
        raise ApiError(422, "messages must end with a user message", param="messages")
    message = turns[-1].text()
    if not message.strip():
        raise ApiError(422, "the last user message is empty", param="messages")
    return [m.text() for m in turns[:-1]], message


def install_openai_routes(app: FastAPI, state) -> None:
    """Add ``POST /v1/chat/completions`` to ``app``, answering from ``state``'s models."""
    from seqlab.serve.app import sse, sse_response

    @app.post("/v1/chat/completions")
    async def chat_completions(body: ChatCompletionRequest):
        model = state.model(body.model)
        history, message = _split_messages(body)
        state.check_length(model, message, "messages")
        options = body.options()
        state.check_options(model, options, chat=True)
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        prompt_tokens = sum(model.count_tokens(t) for t in [*history, message])

        def chunk(delta: dict, finish: str | None = None) -> str:
            return sse({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                        "model": model.name, "system_fingerprint": None,
                        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

        state.in_flight.acquire()
        if body.stream:
            async def events() -> AsyncIterator[str]:
                yield chunk({"role": "assistant", "content": ""})
                async for piece in state.stream(model, lambda: model.stream_reply(history, message, options)):
                    yield chunk({"content": piece})
                yield chunk({}, "stop")
                yield sse("[DONE]")

            return sse_response(events(), state.in_flight)
        try:
            reply = await state.call(model, lambda: model.reply(history, message, options))
        finally:
            state.in_flight.release()
        completion_tokens = len(model.translator.tokenizers.tgt.encode(reply))
        return {
            "id": completion_id, "object": "chat.completion", "created": created, "model": model.name,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }
