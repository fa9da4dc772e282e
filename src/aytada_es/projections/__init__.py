"""The read models: one module per view, kept exactly once from the notification log."""

from .accounts import Accounts, AccountView
from .base import Card, CardChange, Projection
from .credits import CreditStatements, Ledger, Movement, Statement
from .deleted import DeletedProject, DeletedProjects
from .feed import ChangeFeed
from .images import AssetView, ImageView, MyImages
from .runner import ProjectionFailed, ReadModelRunner, ReadModels, read_models
from .scripts import MyScripts, ScriptView
from .status import LAG_LIMIT_S, ReadModelStatus
from .stopped import Backoff, Stopped
from .videos import MyVideos, card, project_card

__all__ = [
    "LAG_LIMIT_S",
    "AccountView",
    "Accounts",
    "AssetView",
    "Backoff",
    "Card",
    "CardChange",
    "ChangeFeed",
    "CreditStatements",
    "DeletedProject",
    "DeletedProjects",
    "ImageView",
    "Ledger",
    "Movement",
    "MyImages",
    "MyScripts",
    "MyVideos",
    "Projection",
    "ProjectionFailed",
    "ReadModelRunner",
    "ReadModelStatus",
    "ReadModels",
    "ScriptView",
    "Statement",
    "Stopped",
    "card",
    "project_card",
    "read_models",
]
