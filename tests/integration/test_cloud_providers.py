"""The cloud providers' real client code (httpx, the ElevenLabs SDK) against local fake APIs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from aytada_es.adapters.assets import AssetStore
from aytada_es.domain.errors import ConfigError
from aytada_es.providers.base import (
    Brief,
    Call,
    PermanentProviderError,
    ProviderError,
    RateLimited,
)
from aytada_es.providers.cloud import (
    ChatLLM,
    ElevenLabsVoice,
    ShotstackRenderer,
    cloud_providers,
)
from fakes.cloud_apis import (
    AUDIO,
    ELEVENLABS_KEY,
    LLM_KEY,
    SHOTSTACK_KEY,
    FakeCloud,
    Reply,
    completion,
    elevenlabs_error,
    fake_cloud,
)

BRIEF = Brief(uuid.uuid4(), "Brewly", "16:9", "A smart kettle that knows your favourite tea.")


class Recorder:
    """A `Call` whose recorded remote ids can be read back."""

    def __init__(self, resume_id: str | None = None) -> None:
        self.ids: list[str] = []
        self.call = Call("call-key-1", resume_id, self.record)

    async def record(self, external_id: str) -> None:
        self.ids.append(external_id)


@pytest.fixture
async def fake() -> AsyncIterator[FakeCloud]:
    async with fake_cloud() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http


@pytest.fixture
def assets(tmp_path: Path) -> AssetStore:
    return AssetStore(tmp_path / "assets")


def llm(fake: FakeCloud, http: httpx.AsyncClient, key: str = LLM_KEY, **kw: object) -> ChatLLM:
    options: dict[str, object] = {"timeout_s": 0.3, "model": "fake-model"} | kw
    return ChatLLM(http, f"{fake.url}/llm/v1", key, **options)  # type: ignore[arg-type]


def voice(
    fake: FakeCloud,
    http: httpx.AsyncClient,
    assets: AssetStore,
    key: str = ELEVENLABS_KEY,
    **kw: object,
) -> ElevenLabsVoice:
    options: dict[str, object] = {"queue_wait_s": 0.01, "timeout_s": 0.3} | kw
    return ElevenLabsVoice(
        assets,
        key,
        base_url=f"{fake.url}/xi",
        http=http,
        **options,  # type: ignore[arg-type]
    )


def shotstack(
    fake: FakeCloud,
    http: httpx.AsyncClient,
    assets: AssetStore,
    key: str = SHOTSTACK_KEY,
    **kw: object,
) -> ShotstackRenderer:
    options: dict[str, object] = {"poll_interval_s": 0.01, "timeout_s": 0.3} | kw
    return ShotstackRenderer(
        http,
        assets,
        key,
        lambda asset_id: f"https://assets.example/{asset_id}",
        base_url=f"{fake.url}/shotstack/edit/v1",
        **options,  # type: ignore[arg-type]
    )


# --- the LLM (ideas, script, scenes) ---------------------------------------------------------


async def test_the_text_steps_come_from_json_mode_chat_completions(
    fake: FakeCloud, http: httpx.AsyncClient
) -> None:
    text = llm(fake, http)
    ideas = await text.ideas(BRIEF, 2, Call("k1"))
    script = await text.script(BRIEF, ideas[0], Call("k2"))
    scenes = await text.scenes(BRIEF, script, Call("k3"))

    assert ideas[0] == {"angle": "question", "title": "Why wait?", "pitch": "Ask. Then answer."}
    assert script["text"].startswith("Why wait?") and script["words"] == 7
    assert script["idea"] == ideas[0]
    assert [s["index"] for s in scenes] == [0, 1] and scenes[1]["duration_s"] == 2.5
    request = fake.seen[0].body
    assert request["model"] == "fake-model"
    assert request["response_format"] == {"type": "json_object"}
    assert "Brewly" in request["messages"][-1]["content"]


async def test_a_refused_llm_key_fails_at_once_without_a_retry(
    fake: FakeCloud, http: httpx.AsyncClient
) -> None:
    with pytest.raises(PermanentProviderError, match=r"401.*refused"):
        await llm(fake, http, key="wrong").ideas(BRIEF, 2, Call("k"))
    assert fake.count("chat") == 1


@pytest.mark.parametrize(
    ("reply", "error", "retry_after"),
    [
        (Reply(503, {"error": {"message": "overloaded"}}), r"HTTP 503", None),
        (Reply(500, {"error": {"message": "boom"}}), r"HTTP 500", None),
        (Reply(429, {"error": {"message": "slow"}}, headers={"retry-after": "7"}), r"429", 7.0),
        (Reply(429, {"error": {"message": "slow"}}), r"rate limited", None),
        (Reply(200, completion({"text": "Late."}), delay_s=0.5), "timed out", None),
    ],
)  # fmt: skip
async def test_a_passing_llm_failure_is_one_attempt_left_to_the_runner_to_retry(
    fake: FakeCloud, http: httpx.AsyncClient, reply: Reply, error: str, retry_after: float | None
) -> None:
    fake.script("chat", reply)
    with pytest.raises(ProviderError, match=error) as raised:
        await llm(fake, http).script(BRIEF, None, Call("k"))
    assert not isinstance(raised.value, PermanentProviderError)
    assert fake.count("chat") == 1  # the provider never retries: the stage runner does
    if reply.status == 429:
        assert isinstance(raised.value, RateLimited)
        assert raised.value.retry_after_s == retry_after
        assert raised.value.failure_code == "rate_limited"
    else:
        assert raised.value.failure_code == "provider_unavailable"
    script = await llm(fake, http).script(BRIEF, None, Call("k"))  # the next attempt
    assert script["title"] == "Why wait?"


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, completion("Sure! Here are ideas: 1. ...")), r"malformed ideas answer"),
        (Reply(200, completion({"ideas": [{"angle": "x"}]})), r"ideas\.0\.title: Field required"),
        (Reply(200, completion({"ideas": []})), r"malformed ideas answer"),
        (Reply(200, completion({"ideas": "no"}, "length")), r"cut off"),
        (Reply(200, {"object": "chat.completion", "choices": []}), r"no choices\[0\]"),
        (Reply(200, body=b"<html>gateway</html>"), r"expected JSON"),
        (Reply(400, {"error": {"message": "bad model"}}), r"HTTP 400.*bad model"),
    ],
)
async def test_a_malformed_llm_answer_is_a_clear_permanent_error(
    fake: FakeCloud, http: httpx.AsyncClient, reply: Reply, message: str
) -> None:
    fake.script("chat", reply)
    with pytest.raises(PermanentProviderError, match=message) as raised:
        await llm(fake, http).ideas(BRIEF, 2, Call("k"))
    assert fake.count("chat") == 1
    # A person reads "could not use" for a malformed answer, "refused" for a refusal.
    expected = "provider_rejected" if reply.status == 400 else "invalid_output"
    assert raised.value.failure_code == expected


# --- ElevenLabs (voiceover) ------------------------------------------------------------------


async def test_the_voiceover_is_spoken_by_elevenlabs_and_stored_as_mp3(
    fake: FakeCloud, http: httpx.AsyncClient, assets: AssetStore
) -> None:
    asset = await voice(fake, http, assets).voiceover(BRIEF, "Hello tea.", 5.0, Call("k"))
    assert asset["kind"] == "voiceover" and asset["content_type"] == "audio/mpeg"
    assert assets.read(asset["id"]) == AUDIO
    seen = fake.seen[0]
    assert seen.path.startswith("/xi/v1/text-to-speech/")
    assert seen.body["text"] == "Hello tea." and seen.body["model_id"] == "eleven_multilingual_v2"


async def test_a_refused_elevenlabs_key_fails_at_once_without_a_retry(
    fake: FakeCloud, http: httpx.AsyncClient, assets: AssetStore
) -> None:
    with pytest.raises(PermanentProviderError, match="401 invalid_api_key"):
        await voice(fake, http, assets, key="wrong").voiceover(BRIEF, "Hi.", 2.0, Call("k"))
    assert fake.count("tts") == 1


@pytest.mark.parametrize(
    ("reply", "after"),
    [
        # The account's concurrent requests are all in use: a slot frees soon.
        (elevenlabs_error(429, "too_many_concurrent_requests"), 0.01),
        (elevenlabs_error(429, "system_busy"), None),  # overloaded: the runner backs off
        (Reply(500, {"detail": "internal"}), None),
        (Reply(502, body=b"bad gateway"), None),
        (Reply(200, body=b"late", delay_s=0.5), None),  # a timeout
        (Reply(200, body=AUDIO, broken=True), None),  # the stream breaks while it is read
    ],
)
async def test_a_passing_elevenlabs_failure_is_one_attempt_left_to_the_runner(
    fake: FakeCloud, http: httpx.AsyncClient, assets: AssetStore, reply: Reply, after: float | None
) -> None:
    fake.script("tts", reply)
    provider = voice(fake, http, assets)
    with pytest.raises(ProviderError) as raised:
        await provider.voiceover(BRIEF, "Hi.", 2.0, Call("k"))
    assert not isinstance(raised.value, PermanentProviderError)
    assert fake.count("tts") == 1
    if reply.status == 429:
        assert isinstance(raised.value, RateLimited) and raised.value.retry_after_s == after
    asset = await provider.voiceover(BRIEF, "Hi.", 2.0, Call("k"))  # the next attempt
    assert assets.read(asset["id"]) == AUDIO  # whole, not the half that came first


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(200, body=b""), "no audio"),
        (Reply(422, {"detail": [{"msg": "text too long"}]}), "HTTP 422"),
    ],
)
async def test_a_malformed_elevenlabs_answer_is_a_clear_permanent_error(
    fake: FakeCloud, http: httpx.AsyncClient, assets: AssetStore, reply: Reply, message: str
) -> None:
    fake.script("tts", reply)
    with pytest.raises(PermanentProviderError, match=message):
        await voice(fake, http, assets).voiceover(BRIEF, "Hi.", 2.0, Call("k"))
    assert fake.count("tts") == 1


# --- Shotstack (clips, stitching) ------------------------------------------------------------


async def test_a_clip_is_rendered_through_every_status_and_downloaded_at_once(
    fake: FakeCloud, http: httpx.AsyncClient, assets: AssetStore
) -> None:
    recorder = Recorder()
    scene = {"index": 0, "headline": "Meet it", "duration_s": 3, "still": {"id": "a" * 64}}
    asset = await shotstack(fake, http, assets).clip(BRIEF, scene, recorder.call)

    assert recorder.ids == ["render-1"]
    assert fake.count("get_render") == 5  # queued, fetching, rendering, saving, done
    assert asset["kind"] == "clip" and asset["duration_s"] == 3.0
    assert assets.read(asset["id"]) == b"bytes of render-1.mp4"
    timeline = fake.seen[0].body["timeline"]
    assert timeline["tracks"][0]["clips"][0]["asset"]["text"] == "Meet it"
    assert timeline["tracks"][1]["clips"][0]["asset"]["src"] == f"https://assets.example/{'a' * 64}"


async def test_stitching_renders_the_ad_with_its_voiceover_and_a_poster(
    fake: FakeCloud, http: httpx.AsyncClient, assets: AssetStore
) -> None:
    clips = [
        {"scene": 0, "id": "c" * 64, "duration_s": 3.0},
        {"scene": 1, "id": "d" * 64, "duration_s": 2.5},
    ]
    video, thumbnail = await shotstack(fake, http, assets).stitch(
        BRIEF, clips, {"id": "e" * 64}, Recorder().call
    )
    assert (video["kind"], thumbnail["kind"]) == ("final_video", "thumbnail")
    assert assets.read(thumbnail["id"]) == b"bytes of render-1-poster.jpg"
    body = fake.seen[0].body
    track = body["timeline"]["tracks"][0]["clips"]
    assert [(c["start"], c["length"]) for c in track] == [(0.0, 3.0), (3.0, 2.5)]
    assert body["timeline"]["soundtrack"]["src"] == f"https://assets.example/{'e' * 64}"
    assert body["output"]["poster"] == {"capture": 0}


async def test_a_failed_render_is_a_permanent_error_with_shotstacks_reason(
    fake: FakeCloud, http: httpx.AsyncClient, assets: AssetStore
) -> None:
    fake.render_progression = ("queued", "fetching", "failed")
    fake.render_error = "Source image returned 404"
    with pytest.raises(PermanentProviderError, match="render-1 failed: Source image returned 404"):
        await shotstack(fake, http, assets).clip(BRIEF, {"index": 0}, Recorder().call)


async def test_a_resumed_call_polls_the_recorded_render_without_a_new_post(
    fake: FakeCloud, http: httpx.AsyncClient, assets: AssetStore
) -> None:
    render_id = fake.add_render(("rendering", "saving", "done"))
    recorder = Recorder(resume_id=render_id)
    asset = await shotstack(fake, http, assets).clip(BRIEF, {"index": 0}, recorder.call)
    assert fake.count("post_render") == 0
    assert assets.read(asset["id"]) == f"bytes of {render_id}.mp4".encode()
    assert recorder.ids == []


async def test_a_resumed_render_that_shotstack_no_longer_knows_is_started_again(
    fake: FakeCloud, http: httpx.AsyncClient, assets: AssetStore
) -> None:
    recorder = Recorder(resume_id="expired-render")
    await shotstack(fake, http, assets).clip(BRIEF, {"index": 0}, recorder.call)
    assert fake.count("post_render") == 1 and recorder.ids == ["render-1"]


async def test_a_refused_shotstack_key_fails_at_once_without_a_retry(
    fake: FakeCloud, http: httpx.AsyncClient, assets: AssetStore
) -> None:
    with pytest.raises(PermanentProviderError, match=r"403.*refused"):
        await shotstack(fake, http, assets, key="wrong").clip(BRIEF, {"index": 0}, Recorder().call)
    assert fake.count("post_render") == 1


async def test_a_passing_shotstack_failure_while_polling_is_resumed_by_the_next_attempt(
    fake: FakeCloud, http: httpx.AsyncClient, assets: AssetStore
) -> None:
    fake.script("get_render", Reply(503, {"message": "busy"}))
    recorder = Recorder()
    with pytest.raises(ProviderError, match="HTTP 503") as raised:
        await shotstack(fake, http, assets).clip(BRIEF, {"index": 0}, recorder.call)
    assert not isinstance(raised.value, PermanentProviderError)
    assert recorder.ids == ["render-1"]  # recorded before the failure: the runner resumes it

    fake.script("cdn", Reply(500, body=b"oops"))
    again = Recorder(resume_id="render-1")
    with pytest.raises(ProviderError, match="HTTP 500"):
        await shotstack(fake, http, assets).clip(BRIEF, {"index": 0}, again.call)
    asset = await shotstack(fake, http, assets).clip(BRIEF, {"index": 0}, again.call)
    assert assets.read(asset["id"]) == b"bytes of render-1.mp4"
    assert fake.count("post_render") == 1  # one render, paid once, however many attempts


async def test_a_render_that_never_finishes_ends_in_a_retryable_error(
    fake: FakeCloud, http: httpx.AsyncClient, assets: AssetStore
) -> None:
    fake.render_progression = ("queued", "rendering")
    recorder = Recorder()
    with pytest.raises(ProviderError, match="still rendering") as raised:
        await shotstack(fake, http, assets, render_timeout_s=0.1).clip(
            BRIEF, {"index": 0}, recorder.call
        )
    assert not isinstance(raised.value, PermanentProviderError)
    assert recorder.ids == ["render-1"]  # the next attempt resumes it


@pytest.mark.parametrize(
    ("endpoint", "reply", "message"),
    [
        ("post_render", Reply(201, {"success": True, "response": {}}), "no 'id'"),
        ("post_render", Reply(201, body=b"created"), "expected JSON"),
        ("get_render", Reply(200, {"success": True}), "malformed answer"),
        ("get_render", Reply(200, {"response": {"status": "exploded"}}), "unknown status"),
        ("get_render", Reply(200, {"response": {"status": "done"}}), "no 'url'"),
    ],
)
async def test_a_malformed_shotstack_answer_is_a_clear_permanent_error(
    fake: FakeCloud,
    http: httpx.AsyncClient,
    assets: AssetStore,
    endpoint: str,
    reply: Reply,
    message: str,
) -> None:
    fake.script(endpoint, reply)
    with pytest.raises(PermanentProviderError, match=message):
        await shotstack(fake, http, assets).clip(BRIEF, {"index": 0}, Recorder().call)


# --- the factory -----------------------------------------------------------------------------


def test_the_cloud_set_names_every_missing_key(assets: AssetStore) -> None:
    with pytest.raises(ConfigError) as raised:
        cloud_providers(
            assets,
            llm_base_url="http://llm.example/v1",
            llm_api_key=None,
            elevenlabs_api_key="",
            shotstack_api_key=None,
            public_asset_url=str,
        )
    message = str(raised.value)
    for var in ("AYTADA_LLM_API_KEY", "ELEVENLABS_API_KEY", "SHOTSTACK_API_KEY"):
        assert var in message
    assert "AYTADA_LLM_BASE_URL" not in message


async def test_the_cloud_set_is_named_cloud_and_uses_the_given_client(
    assets: AssetStore, http: httpx.AsyncClient
) -> None:
    providers = cloud_providers(
        assets,
        llm_base_url="http://llm.example/v1",
        llm_api_key="k1",
        elevenlabs_api_key="k2",
        shotstack_api_key="k3",
        public_asset_url=str,
        http=http,
    )
    assert providers.name == "cloud"
    assert isinstance(providers.ideas, ChatLLM) and providers.ideas.http is http
    assert isinstance(providers.stitching, ShotstackRenderer) and providers.stitching.http is http
