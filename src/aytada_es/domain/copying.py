"""Copying aggregates for commands: cheaper than `copy.deepcopy`, just as safe here."""

from __future__ import annotations

from typing import TypeVar

A = TypeVar("A")


def copy_aggregate(aggregate: A) -> A:
    """A copy whose own lists and dicts can change without touching the original.

    Events replace nested values instead of changing them in place (the domain tests check
    this), so copying the aggregate's containers one level deep is enough.
    """
    copied: A = object.__new__(type(aggregate))
    copied.__dict__.update(
        {k: v.copy() if isinstance(v, list | dict) else v for k, v in vars(aggregate).items()}
    )
    return copied
