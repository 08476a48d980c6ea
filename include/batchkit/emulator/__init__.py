"""A local OpenAI Batch API emulator: Files + Batches endpoints with an honest lifecycle and limits."""

from .app import create_app
from .config import EmulatorConfig

__all__ = ["EmulatorConfig", "create_app"]
