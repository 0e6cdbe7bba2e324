"""OpenAI's own Python client, unchanged, against a real seqlab server on loopback."""

from __future__ import annotations

import pytest

openai = pytest.importorskip("openai", reason="the openai package (a test dependency) is not installed")


@pytest.fixture(scope="module")
def oai(live_url):
    return openai.OpenAI(base_url=f"{live_url}/v1", api_key="unused", max_retries=0, timeout=60)


def test_models_list_in_openais_format(oai):
    assert [m.id for m in oai.models.list()] == ["tiny", "gru"]


def test_chat_completion_answers_the_last_user_message(oai, served_models):
    messages = [{"role": "system", "content": "You translate."}, {"role": "user", "content": "Maria is tired."}]
    completion = oai.chat.completions.create(model="tiny", messages=messages)
    expected = served_models["tiny"].translator.translate("Maria is tired.")
    assert completion.object == "chat.completion" and completion.model == "tiny"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == expected
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_streamed_chat_completion_chunks_add_up_to_the_reply(oai, served_models):
    stream = oai.chat.completions.create(model="gru", messages=[{"role": "user", "content": "Is my brother tall?"}],
                                         stream=True)
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == served_models["gru"].translator.translate("Is my brother tall?")


def test_errors_reach_the_client_as_openai_errors(oai):
    with pytest.raises(openai.NotFoundError, match="unknown model 'gpt-4o'"):
        oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError, match="must end with a user message"):
        oai.chat.completions.create(model="tiny", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.UnprocessableEntityError, match="n: Input should be less than or equal to 1"):
        oai.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], n=2)
