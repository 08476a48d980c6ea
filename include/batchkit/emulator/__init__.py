"""A local Batch API emulator with an honest lifecycle and limits, speaking three vendors' APIs (``vendors``):

- OpenAI: Files + Batches (+ Models) under ``/v1``; bearer key.
- Azure OpenAI global batch: the same Files + Batches under ``/openai/v1`` (``api-key`` header or bearer); ``model``
  is a deployment name (``--azure-deployments``), 100,000 requests per file, no expiry, queue full as a ``failed``
  batch with ``token_limit_exceeded``.
- Anthropic Message Batches under ``/v1/messages/batches`` (``anthropic``; ``x-api-key`` + ``anthropic-version``):
  requests inline, results JSONL in no order, queue full as HTTP 429 ``rate_limit_error``.

The faults of ``EmulatorConfig`` apply to all three. The app is built by ``batchkit.emulator.app.create_app`` from an
``EmulatorConfig`` (``batchkit.emulator.config``); nothing is imported here, so the command line stays fast.
"""
