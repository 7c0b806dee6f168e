"""logprobs through the official OpenAI Python client: chat completions with logprobs /
top_logprobs (streamed and not) and the legacy completions route with its integer logprobs, served
by our worker's textgen handler on a generated model (fixtures shared with test_openai_client)."""

from __future__ import annotations

import math

import openai
import pytest

from test_openai_client import MESSAGES, MODEL_ID, client, served  # noqa: F401  (pytest fixtures)


def check_entries(content, n_top):
    """Each token's alternatives are ordered, hold at most the whole probability mass, and (greedy)
    start with the token itself."""
    for entry in content:
        assert isinstance(entry.token, str)
        assert entry.logprob <= 0.0
        assert isinstance(entry.bytes, list) and all(0 <= b < 256 for b in entry.bytes)
        assert len(entry.top_logprobs) == n_top
        values = [alt.logprob for alt in entry.top_logprobs]
        assert values == sorted(values, reverse=True)
        assert sum(math.exp(v) for v in values) <= 1.0 + 1e-6
        if n_top:
            assert entry.top_logprobs[0].token == entry.token
            assert entry.top_logprobs[0].logprob == entry.logprob
            assert entry.top_logprobs[0].bytes == entry.bytes


def test_chat_logprobs_match_the_tokens(client):
    args = dict(model=MODEL_ID, messages=MESSAGES, max_tokens=10, temperature=0, seed=3)
    completion = client.chat.completions.create(logprobs=True, top_logprobs=5, **args)
    choice = completion.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    content = choice.logprobs.content
    assert len(content) == completion.usage.completion_tokens
    check_entries(content, 5)
    # The tokens' bytes are the answer's text (no stop string here: finish_reason is length).
    assert choice.finish_reason == "length"
    assert bytes(b for e in content for b in e.bytes).decode("utf-8", "replace") == choice.message.content
    # Asking for logprobs changes nothing else.
    plain = client.chat.completions.create(**args)
    assert plain.choices[0].message.content == choice.message.content
    assert plain.choices[0].logprobs is None

    only = client.chat.completions.create(logprobs=True, **args)
    check_entries(only.choices[0].logprobs.content, 0)
    assert [e.logprob for e in only.choices[0].logprobs.content] == [e.logprob for e in content]


def test_streamed_chat_logprobs_equal_the_whole_answer(client):
    args = dict(model=MODEL_ID, messages=MESSAGES, max_tokens=10, temperature=0, seed=3, logprobs=True,
                top_logprobs=3)
    whole = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(stream=True, **args))
    streamed = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in whole.choices[0].logprobs.content]
    assert [[a.token for a in e.top_logprobs] for e in streamed] == \
        [[a.token for a in e.top_logprobs] for e in whole.choices[0].logprobs.content]
    check_entries(streamed, 3)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == whole.choices[0].message.content


@pytest.mark.parametrize("fields, param", [
    (dict(logprobs=True, top_logprobs=21), "top_logprobs"),
    (dict(logprobs=True, top_logprobs=-1), "top_logprobs"),
    (dict(top_logprobs=2), "top_logprobs"),
    (dict(logprobs="yes"), "logprobs"),
])
def test_bad_logprobs_are_bad_requests(client, fields, param):
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, max_tokens=2, **fields)
    assert error.value.status_code == 400
    assert error.value.body["param"] == param


def test_legacy_completions_with_logprobs(client):
    args = dict(model=MODEL_ID, prompt="Once upon a time", max_tokens=8, temperature=0, seed=9)
    completion = client.completions.create(logprobs=3, **args)
    assert completion.object == "text_completion"
    assert completion.model == MODEL_ID
    choice = completion.choices[0]
    assert choice.index == 0 and choice.finish_reason == "length"
    lp = choice.logprobs
    assert lp is not None
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == len(lp.text_offset)
    assert len(lp.tokens) == completion.usage.completion_tokens == 8
    assert "".join(lp.tokens) == choice.text
    assert lp.text_offset == sorted(lp.text_offset) and lp.text_offset[0] == 0
    for token, value, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert 1 <= len(top) <= 3
        assert max(top.values()) == value      # greedy: the chosen token is the most likely
        assert top[token] == value
        assert sum(math.exp(v) for v in top.values()) <= 1.0 + 1e-6

    # Without logprobs the same text and logprobs null; streamed, the same text and logprobs.
    plain = client.completions.create(**args)
    assert plain.choices[0].text == choice.text and plain.choices[0].logprobs is None
    chunks = list(client.completions.create(stream=True, logprobs=3, **args))
    assert all(c.object == "text_completion" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks) == choice.text
    assert chunks[-1].choices[0].finish_reason == "length"
    assert [t for c in chunks if c.choices[0].logprobs for t in c.choices[0].logprobs.token_logprobs] == \
        lp.token_logprobs
    offsets = [o for c in chunks if c.choices[0].logprobs for o in c.choices[0].logprobs.text_offset]
    assert offsets == lp.text_offset

    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(logprobs=6, **args)
    assert error.value.body["param"] == "logprobs"
    with pytest.raises(openai.BadRequestError) as error:
        client.completions.create(echo=True, **args)
    assert error.value.body["param"] == "echo"
