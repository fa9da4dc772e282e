"""The local pictures for any brief: drawn at the format's size, the same every time."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from aytada_es.providers.base import Brief
from aytada_es.providers.local.formats import frame_size
from aytada_es.providers.local.images import banner, flyer, png, product_shot, still
from aytada_es.providers.local.overlay import bands, overlay, veiled
from aytada_es.providers.local.text import scenes_for, script_for

texts = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")), max_size=120)
kinds = st.sampled_from(("soda", "juice", "coffee", "cream", "app", "toothpaste", "boots", ""))


@settings(max_examples=25, deadline=None)
@given(texts.filter(str.strip), texts, kinds, st.sampled_from(("9:16", "16:9", "1:1", "4:5")))
def test_any_brief_draws_every_picture(title: str, text: str, kind: str, fmt: str) -> None:
    brief = Brief(uuid.UUID(int=9), title, fmt, f"{text} {kind}")
    size = frame_size(fmt, 0.08)
    scenes = scenes_for(brief, script_for(brief, None))
    drawn = [still(brief, scene, size) for scene in scenes]
    drawn += [product_shot(brief, size), banner(brief, size), flyer(brief, size)]
    assert all(image.size == size and image.mode == "RGB" for image in drawn)
    for scene in scenes:
        words = overlay(brief, scene, size)
        assert words.size == size and bands(words)  # the words are somewhere on the frame
        assert veiled(drawn[0]).size == size
    assert png(drawn[0]) == png(still(brief, scenes[0], size))
