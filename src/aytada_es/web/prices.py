"""The price list over HTTP: what each step costs, and what autopilot reserves in all."""

from __future__ import annotations

from ..domain.project import autopilot_estimate
from ..domain.steps import SPECS
from .endpoints import Call, Endpoint
from .models import Prices


def price_list() -> Prices:
    """The domain's prices as the API shows them."""
    return Prices.model_validate(
        {
            "steps": [
                {
                    "step": spec.step.value,
                    "unit": spec.unit,
                    "credits_per_unit": spec.credits_per_unit,
                    "units_per_charge": spec.units_per_charge,
                }
                for spec in SPECS.values()
            ],
            "autopilot": autopilot_estimate(),
        }
    )


async def show_prices(call: Call) -> Prices:
    return price_list()


ENDPOINTS = (
    Endpoint(
        "GET",
        "/api/prices",
        show_prices,
        "The price of each step, and the credits autopilot reserves from a new draft to the ad",
        answer=Prices,
        tag="credits",
    ),
)
