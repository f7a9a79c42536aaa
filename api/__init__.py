"""LoanDesk's REST API: an HTTP face over model/, with no validation or prediction logic of its own."""

from .app import create_app

__all__ = ["create_app"]
