"""Run the emulator with uvicorn."""

import logging

import uvicorn

from .app import create_app
from .config import EmulatorConfig


def serve(config: EmulatorConfig, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    auth = "API key required" if config.api_key else "no API key required"
    logging.getLogger("batchkit.emulator").info(
        "OpenAI Batch API emulator on http://%s:%s/v1 (backend %s, data in %s, %s)",
        host,
        port,
        config.backend,
        config.data_dir,
        auth,
    )
    uvicorn.run(create_app(config), host=host, port=port, log_level=log_level, access_log=log_level == "debug")
