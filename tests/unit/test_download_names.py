"""Downloaded files are named after the project and the asset, safely."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aytada_es.web.downloads import ascii_name, attachment, download_name


def test_names_follow_the_title_and_the_kind() -> None:
    title = "Fizzy Lime Sparkling Water"
    assert download_name(title, "banner", "image/png") == "fizzy-lime-sparkling-water-banner.png"
    assert download_name(title, "final_video", "video/mp4") == "fizzy-lime-sparkling-water.mp4"
    assert download_name(title, "scene_still", "image/jpeg") == (
        "fizzy-lime-sparkling-water-scene-still.jpg"
    )
    assert download_name(title, "voiceover", "audio/mpeg") == (
        "fizzy-lime-sparkling-water-voiceover.mp3"
    )
    assert download_name("../../etc/passwd", "flyer", None) == "etc-passwd-flyer"
    assert download_name("", "final_video", "video/mp4") == "aytada.mp4"
    assert download_name(None, "banner", "image/png") == "aytada-banner.png"


def test_a_title_beyond_ascii_gets_a_plain_fallback_and_filename_star() -> None:
    name = download_name("Café Crème", "banner", "image/png")
    assert name == "café-crème-banner.png"
    assert ascii_name(name) == "cafe-creme-banner.png"
    assert attachment(name) == (
        'attachment; filename="cafe-creme-banner.png";'
        " filename*=UTF-8''caf%C3%A9-cr%C3%A8me-banner.png"
    )
    assert attachment("plain.mp4") == 'attachment; filename="plain.mp4"'
    assert ascii_name(download_name("日本の水", "banner", "image/png")) == "banner.png"
    assert ascii_name(download_name("日本の水", "final_video", "video/mp4")) == "download.mp4"


@given(st.text(max_size=300), st.sampled_from(["banner", "final_video", "x_y"]))
def test_any_title_gives_a_short_header_safe_name(title: str, kind: str) -> None:
    name = download_name(title, kind, "image/png")
    header = attachment(name)
    assert name and "/" not in name and "\\" not in name and not name.startswith(".")
    assert len(name) <= 100
    assert header.isascii() and '"' not in header.split('filename="', 1)[1].split('"', 1)[0]
    assert not any(ord(c) < 32 for c in header)
