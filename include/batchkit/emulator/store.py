"""Emulator state: SQLite for file and batch records, plain files for contents, all under one data dir."""

import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..batch_api import LIVE

_FILE_ID = re.compile(r"^file-[A-Za-z0-9]{8,64}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, filename TEXT NOT NULL, purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER
);
CREATE INDEX IF NOT EXISTS files_expiry ON files (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE NOT NULL, status TEXT NOT NULL, data TEXT NOT NULL,
    progress TEXT NOT NULL
);
"""
_LIVE = "(expires_at IS NULL OR expires_at > ?)"  # a file not yet expired (the argument: now, in seconds)
# Which API a record belongs to ("openai", "azure", "anthropic"): each API sees only its own files and batches.
_VENDOR_COLUMNS = ("files", "batches")


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


class Store:
    """Thread-safe access to the emulator's records; contents live in ``data_dir/files/<id>``."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.files_dir = data_dir / "files"
        self.work_dir = data_dir / "work"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(data_dir / "emulator.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        for table in _VENDOR_COLUMNS:  # data dirs from before vendors get the column (every record is OpenAI's)
            if "vendor" not in {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN vendor TEXT NOT NULL DEFAULT 'openai'")
        self._lock = threading.RLock()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # Files
    def blob_path(self, file_id: str) -> Path:
        """The content path of ``file_id``; ids are checked so a path can never leave the data dir."""
        if not _FILE_ID.match(file_id):
            raise KeyError(file_id)
        return self.files_dir / file_id

    def add_file(
        self,
        file_id: str,
        filename: str,
        purpose: str,
        size: int,
        lifetime: int | None = None,
        vendor: str = "openai",
    ) -> dict:
        """Record a file whose bytes are at ``blob_path(file_id)``; it expires ``lifetime`` seconds after it is
        created (never for None)."""
        now = int(time.time())
        expires_at = None if lifetime is None else now + lifetime
        with self._tx() as db:
            db.execute(
                "INSERT INTO files (id, filename, purpose, bytes, created_at, expires_at, vendor) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (file_id, filename, purpose, size, now, expires_at, vendor),
            )
        return self.get_file(file_id)

    def get_file(self, file_id: str, vendor: str | None = None) -> dict | None:
        """The file ``file_id`` (None if it does not exist, has expired, or belongs to another vendor than
        ``vendor``)."""
        with self._lock:
            row = self._db.execute(
                "SELECT id, filename, purpose, bytes, created_at, expires_at FROM files WHERE id = ? "
                f"AND coalesce(?, vendor) = vendor AND {_LIVE}",
                (file_id, vendor, int(time.time())),
            ).fetchone()
        return _file_object(row) if row else None

    def list_files(
        self, purpose: str | None, limit: int, after: str | None, order: str, vendor: str = "openai"
    ) -> tuple[list[dict], bool]:
        clauses, args = ["vendor = ?", _LIVE], [vendor, int(time.time())]
        if purpose:
            clauses.append("purpose = ?")
            args.append(purpose)
        op, direction = ("<", "DESC") if order == "desc" else (">", "ASC")
        if after:
            clauses.append(f"seq {op} (SELECT seq FROM files WHERE id = ?)")
            args.append(after)
        where = f"WHERE {' AND '.join(clauses)}"
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, filename, purpose, bytes, created_at, expires_at FROM files {where} "
                f"ORDER BY seq {direction} LIMIT ?",
                [*args, limit + 1],
            ).fetchall()
        return [_file_object(r) for r in rows[:limit]], len(rows) > limit

    def delete_file(self, file_id: str) -> bool:
        with self._tx() as db:
            deleted = db.execute("DELETE FROM files WHERE id = ?", (file_id,)).rowcount > 0
        if deleted:
            self.blob_path(file_id).unlink(missing_ok=True)
        return deleted

    def purge_expired(self) -> list[str]:
        """Delete every file past its ``expires_at``, record and bytes; the ids deleted."""
        with self._tx() as db:
            ids = [row[0] for row in db.execute(f"SELECT id FROM files WHERE NOT {_LIVE}", (int(time.time()),))]
            db.executemany("DELETE FROM files WHERE id = ?", [(file_id,) for file_id in ids])
        for file_id in ids:
            self.blob_path(file_id).unlink(missing_ok=True)
        return ids

    # Batches: "data" is the public batch object, "progress" the processor's private cursor
    def add_batch(self, batch: dict, progress: dict, vendor: str = "openai") -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO batches (id, status, data, progress, vendor) VALUES (?, ?, ?, ?, ?)",
                (batch["id"], batch["status"], json.dumps(batch), json.dumps(progress), vendor),
            )

    def get_batch(self, batch_id: str, vendor: str | None = None) -> tuple[dict, dict] | None:
        """The batch and its progress (None if it does not exist, or belongs to another vendor than ``vendor``)."""
        with self._lock:
            row = self._db.execute(
                "SELECT data, progress FROM batches WHERE id = ? AND coalesce(?, vendor) = vendor", (batch_id, vendor)
            ).fetchone()
        return (json.loads(row[0]), json.loads(row[1])) if row else None

    def delete_batch(self, batch_id: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM batches WHERE id = ?", (batch_id,)).rowcount > 0

    def save_batch(self, batch: dict, progress: dict) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE batches SET status = ?, data = ?, progress = ? WHERE id = ?",
                (batch["status"], json.dumps(batch), json.dumps(progress), batch["id"]),
            )

    def update_batch(self, batch_id: str, **changes: Any) -> dict | None:
        """Apply ``changes`` to the public object atomically (used by cancel while the processor runs)."""
        with self._tx() as db:
            row = db.execute("SELECT data FROM batches WHERE id = ?", (batch_id,)).fetchone()
            if not row:
                return None
            batch = {**json.loads(row[0]), **changes}
            db.execute(
                "UPDATE batches SET status = ?, data = ? WHERE id = ?", (batch["status"], json.dumps(batch), batch_id)
            )
        return batch

    def list_batches(
        self, limit: int, after: str | None, vendor: str = "openai", before: str | None = None
    ) -> tuple[list[tuple[dict, dict]], bool]:
        """A page of ``vendor``'s batches with their progress, newest first: older than ``after``, or the ``limit``
        just newer than ``before``; and whether more lie beyond the page in that direction."""
        where, args = "WHERE vendor = ?", [vendor]
        if after:
            where += " AND seq < (SELECT seq FROM batches WHERE id = ?)"
            args.append(after)
        order = "DESC"
        if before:
            where += " AND seq > (SELECT seq FROM batches WHERE id = ?)"
            args.append(before)
            order = "ASC"
        with self._lock:
            rows = self._db.execute(
                f"SELECT data, progress FROM batches {where} ORDER BY seq {order} LIMIT ?", [*args, limit + 1]
            ).fetchall()
        page = [(json.loads(r[0]), json.loads(r[1])) for r in rows[:limit]]
        return (page[::-1] if before else page), len(rows) > limit

    def active_batch_ids(self) -> list[str]:
        live = sorted(s.value for s in LIVE)
        with self._lock:
            marks = ", ".join("?" * len(live))
            rows = self._db.execute(f"SELECT id FROM batches WHERE status IN ({marks}) ORDER BY seq", live).fetchall()
        return [r[0] for r in rows]


def _file_object(row: tuple) -> dict:
    file_id, filename, purpose, size, created_at, expires_at = row
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": created_at,
        "expires_at": expires_at,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "status_details": None,
    }
