"""A local OpenAI Batch API emulator: Files + Batches endpoints with an honest lifecycle and limits.

The app is built by ``batchkit.emulator.app.create_app`` from an ``EmulatorConfig`` (``batchkit.emulator.config``);
nothing is imported here, so the command line stays fast.
"""
