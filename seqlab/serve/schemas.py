"""Request bodies of the HTTP API, validated by pydantic: a wrong type or an unknown field is a 422
that names the field.

Decoding options are flat fields of the request (``{"texts": [...], "beam": 5}``) with the names
of the Python API's keyword options; those left out take the run's defaults.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["ChatRequest", "ExplainRequest", "GenerationOptions", "TranslateRequest", "option_values"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False)


class GenerationOptions(_Strict):
    """The decoding options every generating endpoint takes (``None``: the run's default)."""

    beam: int | None = Field(None, ge=1, le=32, description="beam size (1 = greedy)")
    strategy: Literal["greedy", "beam", "sample"] | None = None
    temperature: float | None = Field(None, gt=0, le=100)
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0, le=1)
    repetition_penalty: float | None = Field(None, gt=0)
    no_repeat_ngram: int | None = Field(None, ge=0)
    min_length: int | None = Field(None, ge=0)
    max_new_tokens: int | None = Field(None, ge=1)
    seed: int | None = None
    precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] | None = None


OPTION_NAMES = tuple(GenerationOptions.model_fields)


def option_values(request: BaseModel) -> dict:
    """The decoding options a request sets, as keyword arguments for the model."""
    return {k: v for k in OPTION_NAMES if (v := getattr(request, k, None)) is not None}


def _nonblank(text: str, what: str) -> str:
    if not text.strip():
        raise ValueError(f"{what} is empty")
    return text


class TranslateRequest(GenerationOptions):
    """``POST /v1/translate``: a batch of texts for one model."""

    model: str | None = Field(None, description="run folder name (default: the first model served)")
    texts: list[str] = Field(..., min_length=1)
    stream: bool = Field(False, description="stream one text's translation as server-sent events")

    @field_validator("texts")
    @classmethod
    def _texts(cls, texts: list[str]) -> list[str]:
        for i, t in enumerate(texts):
            _nonblank(t, f"texts[{i}]")
        return texts


class ChatRequest(GenerationOptions):
    """``POST /v1/chat``: one message, in a conversation the server remembers by id."""

    model: str | None = None
    message: str
    conversation_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    stream: bool = False

    @field_validator("message")
    @classmethod
    def _message(cls, message: str) -> str:
        return _nonblank(message, "message")


class ExplainRequest(_Strict):
    """``POST /v1/explain``: the attention steps of one translation, for one layer and head."""

    model: str | None = None
    text: str
    translation: str | None = Field(None, description="default: the model's greedy translation")
    side: Literal["encoder", "decoder", "cross"] = "encoder"
    layer: int = Field(0, ge=0)
    head: int = Field(0, ge=0)

    @field_validator("text")
    @classmethod
    def _text(cls, text: str) -> str:
        return _nonblank(text, "text")


class ChatMessage(_Strict):
    role: Literal["system", "user", "assistant", "developer"]
    content: str | list[dict]
    name: str | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.get("text", "") for part in self.content if part.get("type") == "text")


class ChatCompletionRequest(_Strict):
    """OpenAI's ``POST /v1/chat/completions`` body, the fields seqlab can honour."""

    model: str
    messages: list[ChatMessage] = Field(..., min_length=1)
    stream: bool = False
    stream_options: dict | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    n: int = Field(1, ge=1, le=1, description="one choice per request")
    seed: int | None = None
    user: str | None = None

    def options(self) -> dict:
        """The seqlab decoding options: temperature 0 (or none) decodes greedily, above 0 samples."""
        opts: dict = {}
        if self.temperature:
            opts.update(strategy="sample", temperature=self.temperature)
            if self.top_p is not None:
                opts["top_p"] = self.top_p
            if self.seed is not None:
                opts["seed"] = self.seed
        limit = self.max_completion_tokens or self.max_tokens
        if limit is not None:
            opts["max_new_tokens"] = limit
        return opts
