"""The official OpenAI Python client (PyPI `openai`, pinned in scripts/python-env.sh) pointed at the
endpoint's OpenAI-compatible routes, served by our worker's textgen handler (`worker --serve-api`)
on a small random-weights model that make_test_model writes into the test's directory.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import openai
import pytest
import requests

from processes import ServeApiWorker, binary

API_KEY = "openai-compat-key"
MODEL_ID = "podworker-test-model"   # what GET /openai/v1/models lists (--openai-model)
MESSAGES = [
    {"role": "system", "content": "You are a test."},
    {"role": "user", "content": "Hello there, how are you?"},
]


@pytest.fixture
def served(tmp_path: Path, children) -> ServeApiWorker:
    model = tmp_path / "test-model.gguf"
    subprocess.run([binary("PODWORKER_MAKE_TEST_MODEL"), "write", str(model)], check=True,
                   capture_output=True, timeout=60)
    worker = ServeApiWorker(tmp_path, API_KEY, "textgen", endpoint_args=["--openai-model", MODEL_ID],
                            env={"PODWORKER_MODEL": str(model), "PODWORKER_BACKEND": "cpu"})
    children.append(worker)
    return worker


def make_client(worker: ServeApiWorker, api_key: str = API_KEY) -> openai.OpenAI:
    # No retries: a retried request would submit another job and hide the first answer's status.
    return openai.OpenAI(base_url=f"{worker.origin}/openai/v1", api_key=api_key, max_retries=0,
                         timeout=30)


@pytest.fixture
def client(served: ServeApiWorker) -> openai.OpenAI:
    return make_client(served)


def test_models_list_names_the_served_model(client):
    models = client.models.list()
    assert [m.id for m in models.data] == [MODEL_ID]
    assert all(m.object == "model" for m in models.data)


def test_models_retrieve(client):
    model = client.models.retrieve(MODEL_ID)
    assert model.id == MODEL_ID
    assert model.object == "model"
    assert isinstance(model.created, int)
    assert model.created == client.models.list().data[0].created
    with pytest.raises(openai.NotFoundError) as error:
        client.models.retrieve("no-such-model")
    assert error.value.status_code == 404
    assert "no-such-model" in error.value.message


def test_reply_names_the_listed_model_when_the_request_names_none(client):
    """A request without a model is answered as the model GET /models lists, streamed or not."""
    completion = client.chat.completions.create(model="", messages=MESSAGES, max_tokens=2)
    assert completion.model == MODEL_ID
    chunks = list(client.chat.completions.create(model="", messages=MESSAGES, max_tokens=2, stream=True))
    assert chunks and all(c.model == MODEL_ID for c in chunks)


def test_chat_completion(client):
    completion = client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, max_tokens=8,
                                                temperature=0, seed=11)
    assert completion.object == "chat.completion"
    assert completion.id
    assert completion.model == MODEL_ID
    assert isinstance(completion.created, int)
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str)
    assert choice.finish_reason in {"stop", "length"}
    usage = completion.usage
    assert usage is not None
    assert all(isinstance(n, int) for n in (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens))
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= 8 or choice.finish_reason == "stop"
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    if choice.finish_reason == "length":
        assert usage.completion_tokens == 8


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_stream_equals_the_non_stream_answer(client, temperature):
    """With the same seed (and greedy decoding for temperature 0), streaming changes only the framing."""
    args = dict(model=MODEL_ID, messages=MESSAGES, max_tokens=8, temperature=temperature, seed=1234)
    whole = client.chat.completions.create(**args)

    chunks = list(client.chat.completions.create(stream=True, **args))  # ends at data: [DONE]
    assert chunks, "the stream held no chunks"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert all(c.model == MODEL_ID for c in chunks)
    assert all(len(c.choices) == 1 and c.choices[0].index == 0 for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    # Only the last chunk says why generation ended, and it agrees with the non-stream answer.
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == whole.choices[0].message.content


def test_stream_include_usage(client):
    """stream_options.include_usage: the last chunk has no choices and the whole request's usage;
    every other chunk has usage None."""
    args = dict(model=MODEL_ID, messages=MESSAGES, max_tokens=8, temperature=0, seed=5)
    whole = client.chat.completions.create(**args)
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **args))
    assert len(chunks) >= 3
    *content, last = chunks
    assert all(c.usage is None and len(c.choices) == 1 for c in content)
    assert content[-1].choices[0].finish_reason == whole.choices[0].finish_reason
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.completion_tokens == whole.usage.completion_tokens
    assert last.usage.prompt_tokens == whole.usage.prompt_tokens
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    assert "".join(c.choices[0].delta.content or "" for c in content) == whole.choices[0].message.content

    # A malformed stream_options is the client's error, before any job runs.
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(stream=True, stream_options={"include_usage": "yes"}, **args)  # type: ignore[typeddict-item]
    assert "include_usage" in error.value.message


def test_wrong_api_key_is_authentication_error(served):
    wrong = make_client(served, api_key="not-the-key")
    with pytest.raises(openai.AuthenticationError) as models_error:
        wrong.models.list()
    assert models_error.value.status_code == 401
    assert "API key" in models_error.value.message
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model=MODEL_ID, messages=MESSAGES, max_tokens=4)
    # The right key still works on the same endpoint.
    assert [m.id for m in make_client(served).models.list().data] == [MODEL_ID]


def bad_request(client: openai.OpenAI) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as error:
        client.chat.completions.create(model=MODEL_ID, messages="not a list", max_tokens=4)  # type: ignore[arg-type]
    return error.value


def test_bad_request_error_carries_the_reason(client):
    error = bad_request(client)
    assert '"messages" must be a non-empty array' in error.message
    assert isinstance(error.body, dict) and "messages" in error.body["message"]


def test_bad_request_is_a_client_error(client):
    error = bad_request(client)
    assert isinstance(error, openai.BadRequestError)
    assert error.status_code == 400
    assert error.body["type"] == "invalid_request_error"


def health_jobs(worker: ServeApiWorker) -> dict:
    response = requests.get(f"{worker.v2()}/health", headers={"Authorization": f"Bearer {worker.api_key}"},
                            timeout=10)
    response.raise_for_status()
    return response.json()["jobs"]


# A value out of range for each field the route checks, the field OpenAI's error names, and a piece
# of the message. The model make_test_model writes holds far fewer than a million tokens.
OUT_OF_RANGE = [
    (dict(temperature=-1), "temperature", "between 0 and 2"),
    (dict(temperature=5), "temperature", "between 0 and 2"),
    (dict(top_p=2), "top_p", "between 0 and 1"),
    (dict(extra_body={"top_k": -1}), "top_k", "between 0 and"),
    (dict(seed=-1), "seed", "between 0 and"),
    (dict(max_tokens=1_000_000), "max_tokens", "the model's context holds"),
    (dict(n=2), "n", "the only value supported"),
    (dict(stop=["a", "b", "c", "d", "e"]), "stop", "at most 4 strings"),
    (dict(stop=[""]), "stop", "1 to 256 bytes"),
    (dict(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]),
     "messages.[0].content.[0].type", "only text content parts"),
]


@pytest.mark.parametrize("fields,param,message", OUT_OF_RANGE, ids=[p for _, p, _ in OUT_OF_RANGE])
def test_out_of_range_value_is_one_bad_request_not_retried(served, fields, param, message):
    """The client's default retry policy retries 5xx: a bad value must be a 400 on the first
    request, naming the field, with no job run (so none FAILED)."""
    sent = []
    http = httpx.Client(event_hooks={"request": [sent.append]})
    client = openai.OpenAI(base_url=f"{served.origin}/openai/v1", api_key=API_KEY, http_client=http, timeout=30)
    assert client.max_retries >= 1  # the default policy, which would retry a 500
    before = health_jobs(served)
    args = dict(model=MODEL_ID, messages=MESSAGES, max_tokens=4)
    args.update(fields)
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(**args)
    assert error.value.status_code == 400
    assert len(sent) == 1, "the bad request was retried"
    assert error.value.body["type"] == "invalid_request_error"
    assert error.value.body["param"] == param
    assert error.value.param == param
    assert message in error.value.body["message"]
    after = health_jobs(served)
    assert after == before
    assert after.get("failed", 0) == 0
    # The endpoint still serves: a good request on the same client answers.
    assert client.chat.completions.create(model=MODEL_ID, messages=MESSAGES, max_tokens=2).object == "chat.completion"
