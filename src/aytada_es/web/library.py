"""The user's libraries over HTTP: scripts, images, the files themselves, and their credits."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, Response

from ..domain.errors import AssetNotFound
from ..projections.images import AssetView
from .downloads import attachment, download_name
from .endpoints import Call, Endpoint, Parameter, applied_in_time
from .models import CreditStatement, ImageList, ScriptList

# Served files are ours, but never let a browser run one as a page of this site.
_FILE_HEADERS = {
    "Cache-Control": "private, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


async def list_scripts(call: Call) -> ScriptList:
    scripts = await run_in_threadpool(
        call.web.read_models.scripts.scripts_of, call.principal.account_id
    )
    return ScriptList.model_validate({"scripts": scripts})


async def list_images(call: Call) -> ImageList:
    images = await run_in_threadpool(
        call.web.read_models.images.images_of, call.principal.account_id
    )
    return ImageList.model_validate({"images": images})


async def credit_statement(call: Call) -> CreditStatement:
    statement = await run_in_threadpool(
        call.web.read_models.credits.statement, call.principal.account_id
    )
    return CreditStatement.model_validate(statement)


async def asset_file(call: Call) -> Response:
    asset_id: str = call.request.path_params["asset_id"]
    web, principal = call.web, call.principal
    images = web.read_models.images

    def lookup() -> AssetView | None:
        if principal.role == "auditor":
            return images.asset(asset_id)
        return images.asset_for(principal.account_id, asset_id)

    asset = await run_in_threadpool(lookup)
    if asset is None:  # maybe just made: wait for My Images to reach the log's end, look again
        head = await run_in_threadpool(web.studio.recorder.max_notification_id)
        if head and await applied_in_time(web, head, (images.name,)):
            asset = await run_in_threadpool(lookup)
    if asset is None:
        raise AssetNotFound(asset_id)
    path = web.assets.path(asset_id)
    if not path.is_file():
        raise AssetNotFound(asset_id)
    content_type = asset["content_type"] or "application/octet-stream"
    download = call.request.query_params.get("download", "") in ("1", "true", "yes")
    if not download:
        return FileResponse(path, media_type=content_type, headers=_FILE_HEADERS)
    title = await run_in_threadpool(web.read_models.videos.title_of, asset["project_id"])
    name = download_name(title, asset["kind"], asset["content_type"])
    headers = {**_FILE_HEADERS, "Content-Disposition": attachment(name)}
    return FileResponse(path, media_type=content_type, headers=headers)


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/scripts",
        list_scripts,
        "My Scripts: every script of the user's projects, newest first",
        answer=ScriptList,
        tag="library",
        reads=("scripts",),
    ),
    Endpoint(
        "GET",
        "/api/images",
        list_images,
        "My Images: every generated image of the user's projects, newest first",
        answer=ImageList,
        tag="library",
        reads=("images",),
    ),
    Endpoint(
        "GET",
        "/api/assets/{asset_id}",
        asset_file,
        "A generated file (image, clip, audio, final MP4); `?download=1` as an attachment named"
        " after the project and the asset (`fizzy-lime-sparkling-water-banner.png`)",
        errors=(404,),
        query={"download": Parameter("1 to download the file as an attachment")},
        # What the providers store; a file of no recorded type is served as octet-stream.
        media=("image/*", "video/*", "audio/*", "application/octet-stream"),
        tag="library",
    ),
    Endpoint(
        "GET",
        "/api/credits",
        credit_statement,
        "The user's credits: free balance, reserved, every movement oldest first",
        answer=CreditStatement,
        tag="credits",
        reads=("credits",),
    ),
)
