"""Publishing a finished split into ``--out``: atomically, replacing only a previous split, never deleting
anything else."""

import os
import shutil
import uuid
from pathlib import Path

from ..errors import InputError
from .manifest import MANIFEST_NAME, Manifest


def publish(staging: Path, out: Path) -> None:
    """Move the finished split into ``out``: a new or empty directory, or a previous split that its manifest
    proves (it lists every file there). Anything else is refused, never deleted."""
    if out.exists() or out.is_symlink():
        check_out(out)
        old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        os.rename(out, old)
        os.rename(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, out)


def check_out(out: Path) -> None:
    """``out`` is new, empty, or a previous split (see ``publish``); else an InputError."""
    if not (out.exists() or out.is_symlink()):
        return
    if out.is_symlink() or not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory; choose a new or empty directory")
    foreign = _not_a_previous_split(out)
    if foreign:
        raise InputError(
            f"--out {out} holds files that are not a previous split ({', '.join(foreign[:3])}); nothing was "
            "changed: choose a new or empty --out"
        )


def _not_a_previous_split(out: Path) -> list[str]:
    """Names in ``out`` that its manifest does not account for (all of them when there is no readable manifest)."""
    present = sorted(p.name for p in out.iterdir())
    if not present:
        return []
    try:
        manifest = Manifest.load(out / MANIFEST_NAME)
    except (OSError, ValueError, TypeError, KeyError):
        return [name for name in present if name != MANIFEST_NAME] or present
    listed = {MANIFEST_NAME, *(Path(f.path).name for f in manifest.files)}
    if manifest.rows_file:
        listed.add(Path(manifest.rows_file).name)
    return [name for name in present if name not in listed or not (out / name).is_file()]
