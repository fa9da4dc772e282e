"""A varied history of projects, stored through the Studio's own commands (benchmarks, tests)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from ..application import Studio
from ..domain.failures import FailureCode
from ..domain.steps import Price, Step

_NOW = datetime(2026, 1, 1, tzinfo=UTC)
_SCENES = 4


def _generation(units: int) -> dict[str, Any]:
    return {
        "provider": "instant",
        "stage_version": "1",
        "units": units,
        "started_at": _NOW,
        "finished_at": _NOW,
        "attempts": 1,
    }


def _asset(id: str, kind: str, content_type: str = "video/mp4") -> dict[str, Any]:
    return {"id": id, "kind": kind, "content_type": content_type, "created_at": _NOW.isoformat()}


def _result(step: Step, tag: str) -> dict[str, Any]:
    if step is Step.IDEAS:
        return {"ideas": [{"title": f"Idea {i}"} for i in range(3)]}
    if step is Step.SCRIPT:
        return {"script": {"text": "Buy it now. " * 5, "idea": {"title": "Idea 0"}}}
    if step is Step.SCENES:
        scene = {"headline": "h", "visual": "v", "duration_s": 3}  # as providers write them
        return {"scenes": [{"index": i, **scene} for i in range(_SCENES)]}
    if step is Step.VIDEO:
        return {"duration_s": 3.0 * _SCENES}
    if step is Step.VOICEOVER:
        return {"asset": _asset(f"vo-{tag}", "voiceover", "audio/wav")}
    return {
        "video": _asset(f"final-{tag}", "video"),
        "thumbnail": _asset(f"thumb-{tag}", "thumbnail", "image/png"),
    }


def project_history(studio: Studio, owner: UUID, i: int) -> UUID:
    """Store one project's life; which one depends on `i` (failures, retries, deletes, ...)."""
    project = studio.create_project(
        owner, title=f"Ad {i}", format=("9:16", "1:1", "16:9")[i % 3], brief="b", actor="user"
    )
    pid, tag = project.id, f"{i % 40}"  # shared assets: two projects may hold the same one

    def version() -> int:
        request = studio.project(pid).request
        assert request is not None
        return int(request["version"])

    def done(step: Step) -> None:
        studio.complete_step(
            pid,
            step=step,
            version=version(),
            result=_result(step, tag),
            generation=_generation(1),
            actor=f"stage:{step}",
        )

    def failed(step: Step) -> None:
        studio.fail_step(
            pid,
            step=step,
            version=version(),
            code=FailureCode.PROVIDER_UNAVAILABLE,
            error="provider timed out",
            generation=_generation(0),
            actor=f"stage:{step}",
        )

    requests: list[tuple[Step, Callable[[], object]]] = [
        (Step.IDEAS, lambda: studio.request_ideas(owner, pid, actor="user")),
        (Step.SCRIPT, lambda: studio.request_script(owner, pid, actor="user")),
        (Step.SCENES, lambda: studio.request_scenes(owner, pid, actor="user")),
        (Step.VIDEO, lambda: studio.request_render(owner, pid, actor="user")),
    ]
    for step, request in requests:
        request()
        if step is Step.SCRIPT and i % 7 == 3:  # a failure, then a retry
            failed(step)
            studio.retry(owner, pid, actor="user")
        if step is Step.SCENES and i % 11 == 5:  # stopped half way
            studio.cancel(owner, pid, actor="user")
            break
        if step is Step.VIDEO and i % 17 == 8:  # still rendering
            break
        if step is Step.VIDEO:
            v = version()
            for scene in range(_SCENES):
                studio.record_clip(
                    pid, version=v, scene=scene, asset=_asset(f"clip-{scene}-{tag}", "clip"),
                    actor="stage:video",
                )  # fmt: skip
        done(step)
    else:
        done(Step.VOICEOVER)
        done(Step.STITCHING)
    if i % 5 == 2:  # an add-on, charged what it used
        addon = studio.request_addon(
            pid, step="captions", trigger_version=studio.project(pid).version, estimate=6,
            stage_version="1", actor="stage:captions",
        )  # fmt: skip
        if addon is not None and i % 15 != 7:  # else still in flight
            studio.complete_addon(
                pid, step="captions", version=addon, price=Price("video", 3),
                assets=[_asset(f"cap-{tag}", "captioned_video")], generation=_generation(1),
                actor="stage:captions",
            )  # fmt: skip
    if i % 13 == 4:
        studio.add_assets(pid, assets=[_asset(f"banner-{i}", "banner", "image/png")], actor="user")
    if i % 9 == 1:
        studio.delete_project(owner, pid, actor="user")
        if i % 18 == 1:
            studio.restore_project(pid, actor="support")
    return pid


def store_history(studio: Studio, projects: int, owners: int) -> None:
    """Open `owners` accounts and store `projects` project lives among them, credits granted."""
    ids = [studio.open_account(f"owner-{o}", credits=10**7)[0].id for o in range(owners)]
    for i in range(projects):
        project_history(studio, ids[i % owners], i)
        if i % 50 == 49:
            studio.grant_credits(f"owner-{(i // 50) % owners}", 100)
