"""Names of downloaded files: after the project and the asset, safe on every system."""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from urllib.parse import quote

MAX_STEM = 80  # characters of the title kept in a name
_NOT_WORD = re.compile(r"[\W_]+")
# The one file of a project: named after the project alone.
_UNNAMED_KINDS = frozenset({"final_video"})


def _slug(text: str) -> str:
    return _NOT_WORD.sub("-", text.lower()).strip("-")[:MAX_STEM].strip("-")


def download_name(title: str | None, kind: str, content_type: str | None) -> str:
    """`fizzy-lime-sparkling-water-banner.png`: the title's words, the kind, the extension."""
    stem = _slug(unicodedata.normalize("NFKC", title or "")) or "aytada"
    if kind not in _UNNAMED_KINDS:
        stem = f"{stem}-{_slug(kind) or 'file'}"
    media = (content_type or "").split(";")[0].strip().lower()
    extension = {"image/jpeg": ".jpg", "audio/mpeg": ".mp3"}.get(media)
    return stem + (extension or mimetypes.guess_extension(media) or "")


def ascii_name(name: str) -> str:
    """The closest name in ASCII letters (accents dropped), for clients that ignore `filename*`."""
    decomposed = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    stem, dot, extension = decomposed.rpartition(".")
    if not dot:
        stem, extension = decomposed, ""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-") or "download"
    return f"{stem}.{extension}" if extension else stem


def attachment(name: str) -> str:
    """The `Content-Disposition` of a download (RFC 6266: `filename*` when not plain ASCII)."""
    plain = ascii_name(name)
    header = f'attachment; filename="{plain}"'
    if plain != name:
        header += f"; filename*=UTF-8''{quote(name, safe='')}"
    return header
