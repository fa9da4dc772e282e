"""A customer's own evidence: the signed dispute pack of their account, to verify offline."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..adapters.anchors import AnchorLog
from ..pack.export import account_pack
from ..pack.signing import signing_key
from .endpoints import Call, Endpoint

MEDIA = "application/x-ndjson"


async def own_pack(call: Call) -> Response:
    service, account_id = call.web.service, call.principal.account_id

    def pack() -> bytes:
        name = service.studio.account(account_id).name
        anchors = AnchorLog(service.settings.anchors_dir)
        return account_pack(service.studio, anchors, signing_key(service.settings.data_dir), name)

    data = await run_in_threadpool(pack)
    return Response(
        data,
        media_type=MEDIA,
        headers={
            "Content-Disposition": f'attachment; filename="aytada-pack-{account_id}.jsonl"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/account/pack",
        own_pack,
        "The user's signed dispute pack: every project of theirs (deleted ones too), their"
        " statement with the chain head of each line; `aytada-es audit verify` checks it offline",
        media=MEDIA,
        tag="credits",
    ),
)
