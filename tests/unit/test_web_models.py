"""The API's literal types name exactly what the domain and the read models know."""

from __future__ import annotations

from typing import Any, get_args

import pytest

from aytada_es.domain.account import MOVEMENT_EFFECTS, ROLES
from aytada_es.domain.assets import IMAGE_KINDS
from aytada_es.domain.failures import FailureCode
from aytada_es.domain.project import FORMATS
from aytada_es.domain.status import Status
from aytada_es.web import models


@pytest.mark.parametrize(
    ("literal", "known"),
    [
        (models.Format, FORMATS),
        (models.StatusName, [s.value for s in Status]),
        (models.ImageKind, IMAGE_KINDS),
        (models.Role, ROLES),
        (models.FailureCodeName, [c.value for c in FailureCode]),
        (
            models.CreditMovement.model_fields["kind"].annotation,
            [k for k, _, _ in MOVEMENT_EFFECTS.values()],
        ),
    ],
)
def test_a_literal_type_of_the_api_lists_what_the_code_knows(literal: Any, known: Any) -> None:
    assert sorted(get_args(literal)) == sorted(known)
