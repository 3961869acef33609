"""STUB (owned by the logging/cli helper)."""

from __future__ import annotations

from asgiref.sync import async_to_sync, sync_to_async
from quart import jsonify, render_template

__all__ = ["async_to_sync", "jsonify", "render_template", "sync_to_async"]
