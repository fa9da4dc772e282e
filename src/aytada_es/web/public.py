"""Assets behind signed links: what a remote renderer (Shotstack) downloads."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ..adapters.assets import AssetStore
from ..adapters.links import AssetLinks
from ..domain.errors import AssetNotFound

# What a browser that follows a link may do with the file: show it, never run it as a page.
_FILE_HEADERS = {
    "Cache-Control": "private, max-age=3600",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
}


def routes(links: AssetLinks, assets: AssetStore) -> list[BaseRoute]:
    """`GET /public/assets/{id}?expires=&signature=`: the file, or 404 for a bad or old link."""

    async def public_asset(request: Request) -> Response:
        asset_id = request.path_params["asset_id"]
        query = request.query_params
        if links.valid(asset_id, query.get("expires", ""), query.get("signature", "")):
            try:
                path = assets.path(asset_id)
            except AssetNotFound:
                path = None
            if path is not None and path.is_file():
                return FileResponse(path, headers=_FILE_HEADERS)
        error = {"code": "not_found", "message": f"asset {asset_id} not found"}
        return JSONResponse({"error": error}, status_code=404)

    return [Route("/public/assets/{asset_id}", public_asset, methods=["GET"])]
