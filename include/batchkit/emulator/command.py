"""``batchkit emulator``: its options (most derived from ``EmulatorConfig``) and serving with them."""

import argparse
import sys

from ..errors import BatchkitError


def add_emulator_command(commands: argparse._SubParsersAction) -> None:
    from .config import DEFAULT_MODELS, EmulatorConfig, cli_flags

    d = EmulatorConfig()
    p = commands.add_parser(
        "emulator",
        help="run the local OpenAI Batch API emulator",
        description="Serve OpenAI's Files, Batches and Models endpoints under /v1 on this machine, with the real "
        "lifecycle (validating -> in_progress -> finalizing -> completed, failed, expired, cancelled), limits and "
        "error envelopes; the same for Azure OpenAI under /openai/v1, and Anthropic's Message Batches under "
        "/v1/messages/batches. State persists in --data-dir. Point the openai SDK at http://HOST:PORT/v1 (Azure: "
        "http://HOST:PORT/openai/v1), the anthropic SDK at http://HOST:PORT.",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s). Any other address needs an API key "
        "(BATCHKIT_EMULATOR_API_KEY or --api-key-file) or --no-auth: the emulator is a test server",
    )
    p.add_argument(
        "--no-auth", action="store_true", help="allow a non-loopback --host without an API key (not recommended)"
    )
    p.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    p.add_argument(
        "--data-dir", default=str(d.data_dir), help="state directory: SQLite + file contents (default: %(default)s)"
    )
    p.add_argument(
        "--api-key-file",
        help="file holding the key every request must send as 'Authorization: Bearer KEY' (default: env "
        "BATCHKIT_EMULATOR_API_KEY, else no auth). Never on the command line: other users see it in `ps`",
    )
    p.add_argument("--api-key", help=argparse.SUPPRESS)  # refused with guidance, see _emulator_key
    p.add_argument(
        "--backend",
        choices=["echo", "forward"],
        default="echo",
        help="echo: deterministic offline answers; forward: call --upstream-url (default: %(default)s)",
    )
    p.add_argument(
        "--upstream-api-key-env",
        default="UPSTREAM_API_KEY",
        help="env var holding the upstream key (default: %(default)s)",
    )
    p.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help="comma-separated models that exist; '*' accepts any (default: common OpenAI models)",
    )
    for option, name, settings in cli_flags():
        p.add_argument(option, dest=name, **settings)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.set_defaults(run=_run_emulator)


def _emulator_key(args: argparse.Namespace) -> str | None:
    """The emulator's API key, from a file or the environment: a key in argv is readable by every local user."""
    import os
    from pathlib import Path

    if args.api_key is not None:
        raise BatchkitError(
            "--api-key puts the key in the process list (`ps`); set BATCHKIT_EMULATOR_API_KEY or use --api-key-file"
        )
    if not args.api_key_file:
        return os.environ.get("BATCHKIT_EMULATOR_API_KEY") or None
    try:
        key = Path(args.api_key_file).read_text(encoding="utf-8").strip()
    except OSError as e:
        raise BatchkitError(f"--api-key-file {args.api_key_file}: {e.strerror or e}") from None
    if not key:
        raise BatchkitError(f"--api-key-file {args.api_key_file} is empty")
    return key


def _run_emulator(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from .config import EmulatorConfig, cli_flags
    from .server import serve

    config = EmulatorConfig(
        data_dir=Path(args.data_dir),
        api_key=_emulator_key(args),
        backend=args.backend,
        upstream_api_key=os.environ.get(args.upstream_api_key_env),
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
        **{name: getattr(args, name) for _, name, _ in cli_flags()},
    )
    if config.backend == "forward" and not config.upstream_url:
        raise BatchkitError("--backend forward needs --upstream-url")
    if not _loopback(args.host):
        if not config.api_key and not args.no_auth:
            raise BatchkitError(
                f"--host {args.host} is reachable from other machines: set an API key (BATCHKIT_EMULATOR_API_KEY "
                "or --api-key-file), or pass --no-auth to serve without one"
            )
        print(f"batchkit: warning: the emulator listens on {args.host}; it is a test server", file=sys.stderr)
    serve(config, args.host, args.port, args.log_level)
    return 0


def _loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
