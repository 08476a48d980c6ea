"""Paths on local disk or object storage (fsspec URLs such as ``s3://bucket/key``).

Remote URLs are opened through fsspec. A caller that holds credentials (the Airflow layer builds filesystems from
its connections) registers a filesystem per protocol with ``use_filesystem``; otherwise fsspec's defaults apply
(environment credentials, ``AWS_ENDPOINT_URL``).
"""

import os
import re
import shutil
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from .errors import SetupError

_filesystems: dict[str, Any] = {}
LEDGER_DIR = "_ledger"  # <staging>/<dag_id>/<partition>/_ledger: see batchkit.ledger
PIPELINES_DIR = "_pipelines"  # <staging>/<dag_id>/_pipelines/<pipeline_id>/<partition>/...: a pipeline in a group
PIPELINE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")  # one path segment; never "_..." (reserved) or ".."


def pipeline_parts(dag_id: str, pipeline_id: str = "") -> tuple[str, ...]:
    """Where a pipeline's partitions live under the staging root: ``<dag_id>`` for the DAG's top-level pipeline
    (the layout of every deployment so far), ``<dag_id>/_pipelines/<pipeline_id>`` for one in a task group.

    A partition key never starts with ``_``, so the reserved ``_pipelines`` directory is never taken for a
    partition, and the top-level pipeline's ``prune`` never enters it.
    """
    if not pipeline_id:
        return (dag_id,)
    if not PIPELINE_ID.fullmatch(pipeline_id):
        raise SetupError(f"pipeline id {pipeline_id!r} cannot name a staging directory: use letters, digits, . _ -")
    return (dag_id, PIPELINES_DIR, pipeline_id)


def is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def local_path(path: str | Path) -> Path:
    """A local path given as a path or a ``file://`` URL (``file:///abs/dir`` is ``/abs/dir``)."""
    return Path(str(path).removeprefix("file://"))


def credential_errors() -> tuple[type[Exception], ...]:
    """The exceptions meaning that no object storage credentials were found (botocore's, when it is installed)."""
    try:
        from botocore.exceptions import NoCredentialsError
    except ImportError:
        return ()
    return (NoCredentialsError,)


CREDENTIALS_HELP = (
    "no credentials for S3 were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE with "
    "~/.aws/credentials, or an instance role); AWS_ENDPOINT_URL points at an S3-compatible store"
)


def use_filesystem(protocol: str, fs: Any) -> None:
    """Open ``protocol://`` URLs through ``fs`` (an fsspec filesystem) from now on, in this process."""
    _filesystems[protocol] = fs


def url_to_fs(url: str) -> tuple[Any, str]:
    """The filesystem for ``url`` and the path inside it."""
    import fsspec

    protocol, _, rest = url.partition("://")
    fs = _filesystems.get(protocol)
    return (fs, rest) if fs is not None else fsspec.core.url_to_fs(url)


def open_file(path: str | Path, mode: str = "rb", **options: Any) -> IO:
    """Open a local path or a remote URL (remote reads are ranged and streamed, never downloaded whole)."""
    if not is_remote(str(path)):
        return open(path, mode)
    fs, inner = url_to_fs(str(path))
    return fs.open(inner, mode, **options)


class Upload:
    """A file written straight to ``target`` that appears whole or not at all: streamed to object storage as a
    multipart upload (``discard`` aborts it), or written locally to ``<target>.part`` and renamed by ``commit``.
    Nothing of it needs local disk on object storage."""

    def __init__(self, target: str) -> None:
        self.target = target
        if is_remote(target):
            fs, inner = url_to_fs(target)
            self.partial = None
            self.handle: IO[bytes] = fs.open(inner, "wb")
        else:
            self.partial = local_path(target).with_name(local_path(target).name + ".part")
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(self.partial, "wb")  # noqa: SIM115 (closed by commit or discard)

    def commit(self) -> None:
        self.handle.close()
        if self.partial is not None:
            os.replace(self.partial, local_path(self.target))

    def discard(self) -> None:
        if self.partial is not None:
            self.handle.close()
            self.partial.unlink(missing_ok=True)
        elif not self.handle.closed:
            self.handle.discard()  # aborts the multipart upload (a small file was never sent)
            self.handle.closed = True  # nothing left to finalize


def put_file(local: Path, target: str) -> None:
    """Copy a finished local file to ``target`` so it appears whole or not at all (rename; S3 upload)."""
    if is_remote(target):
        fs, inner = url_to_fs(target)
        fs.put_file(str(local), inner)
        return
    destination = Path(target)
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    try:
        os.replace(local, partial)
    except OSError:  # another filesystem: copy instead of moving
        shutil.copyfile(local, partial)
    os.replace(partial, destination)


def read_bytes(url: str) -> bytes | None:
    """The whole content of a small file, or None when it does not exist."""
    try:
        with open_file(url) as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_bytes(url: str, data: bytes, exclusive: bool = False) -> bool:
    """Write a small file whole (atomic rename on disk; one PUT on S3).

    :param exclusive: create it only if it does not exist (``O_EXCL`` on disk, a conditional PUT on S3);
        returns False when it already existed, so two writers can race for one claim and exactly one wins.
    """
    if is_remote(url):
        fs, inner = url_to_fs(url)
        try:
            fs.pipe_file(inner, data, mode="create" if exclusive else "overwrite")
        except FileExistsError:
            return False
        return True
    path = Path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    if exclusive:
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return True
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    partial.write_bytes(data)
    os.replace(partial, path)
    return True


def list_files(url: str, suffix: str = "") -> list[str]:
    """Files directly under the directory ``url`` whose names end with ``suffix``, as URLs, sorted."""
    if is_remote(url):
        fs, inner = url_to_fs(url)
        protocol = url.split("://", 1)[0]
        try:
            names = fs.ls(inner.rstrip("/"), detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(
            f"{protocol}://{n}" for n in names if n.endswith(suffix) and not n.rsplit("/", 1)[-1].startswith(".")
        )
    directory = Path(url)
    if not directory.is_dir():
        return []
    return sorted(str(p) for p in directory.iterdir() if p.name.endswith(suffix) and not p.name.startswith("."))


def prune(root: str, older_than: timedelta, protect: list[str] = ()) -> list[str]:
    """Delete the run directories ``root/<partition>/<run>`` whose newest file is older than ``older_than``.

    Anything under ``root`` that is not two levels deep is left alone, and so are the ledgers and the reserved
    directories (``_...``: other pipelines' areas, ``pipeline_parts``), and every directory that holds or lies
    inside a ``protect`` path (the source data must never be deleted by a misconfigured staging root).

    :returns: the deleted directories.
    """
    fs, base = url_to_fs(root) if is_remote(root) else url_to_fs(Path(root).resolve().as_uri())
    base = base.rstrip("/")
    if not fs.exists(base):
        return []
    newest: dict[str, datetime] = defaultdict(lambda: datetime.min.replace(tzinfo=UTC))
    for path, info in fs.find(base, detail=True).items():
        parts = path[len(base) :].strip("/").split("/")
        # the ledger outlives runs (it prevents paying twice); "_..." is never a partition (PIPELINES_DIR)
        if len(parts) > 2 and parts[1] != LEDGER_DIR and not parts[0].startswith("_"):
            run = f"{base}/{parts[0]}/{parts[1]}"
            newest[run] = max(newest[run], _modified(info))
    cutoff = datetime.now(UTC) - older_than
    guarded = [_inner(p) for p in protect if p]
    deleted = []
    for run, modified in sorted(newest.items()):
        if modified < cutoff and not any(g.startswith(run + "/") or run.startswith(g) for g in guarded):
            fs.rm(run, recursive=True)
            deleted.append(run)
    return deleted


def _inner(path: str) -> str:
    """A path as the filesystem names it (bucket/key for S3, absolute path for local files)."""
    return (path.partition("://")[2] if is_remote(path) else str(Path(path).resolve())).rstrip("/")


def _modified(info: dict[str, Any]) -> datetime:
    """Last modification of an fsspec listing entry (local: ``mtime``; S3: ``LastModified``)."""
    value = info.get("LastModified") or info.get("mtime") or info.get("last_modified") or 0
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)
