"""The read models: one module per view, kept exactly once from the notification log."""

from .accounts import Accounts, AccountView
from .base import Card, CardChange, Projection
from .deleted import DeletedProject, DeletedProjects
from .runner import ProjectionFailed, ReadModelRunner, ReadModels, read_models
from .store import ReadModelStore
from .videos import MyVideos, card, project_card

__all__ = [
    "AccountView",
    "Accounts",
    "Card",
    "CardChange",
    "DeletedProject",
    "DeletedProjects",
    "MyVideos",
    "Projection",
    "ProjectionFailed",
    "ReadModelRunner",
    "ReadModelStore",
    "ReadModels",
    "card",
    "project_card",
    "read_models",
]
