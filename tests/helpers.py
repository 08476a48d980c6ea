"""Small helpers shared by tests (no fixtures here)."""

import threading
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from batchkit.dev.devstack import Stack
from batchkit.dev.sample import write_sample_partition


def run_concurrently(work: Callable[[Any], Any], arguments: Iterable[Any]) -> list[BaseException]:
    """Run ``work(argument)`` for every argument in its own thread at once; return the errors raised."""
    errors: list[BaseException] = []

    def guarded(argument: Any) -> None:
        try:
            work(argument)
        except Exception as exc:  # returned to the test, which asserts on it
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(a,)) for a in arguments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def corrupt_data_pages(path: str | Path) -> str:
    """Keep a Parquet file's footer (its schema reads fine) but break its data, so reading fails midway."""
    data = bytearray(Path(path).read_bytes())
    for i in range(8, len(data) // 2):
        data[i] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    return str(path)


@contextmanager
def running_stack(root: Path, partitions: dict[str, int], dag_id: str, **settings: Any):
    """A started emulator + Airflow stack with sample partitions ``{date: rows}``; stopped on exit."""
    stack = Stack(root, **settings)
    for day, rows in partitions.items():
        write_sample_partition(stack.data_dir / "reviews" / f"dt={day}", rows, files=3, seed=int(day[-2:]))
    stack.start(progress=lambda message: None)
    try:
        stack.wait_for_dag(dag_id)
        yield stack
    finally:
        stack.stop()


def emulator_objects(stack: Stack, kind: str) -> list[dict]:
    """Every ``batches`` or ``files`` object of the stack's emulator, newest first (asks again on injected faults)."""
    import httpx

    found, after = [], None
    while True:
        params = {"limit": 100, **({"after": after} if after else {})}
        response = httpx.get(f"{stack.emulator.base_url}/{kind}", params=params, timeout=30)
        if response.status_code != 200:
            continue
        page = response.json()
        found += page["data"]
        if not page["has_more"]:
            return found
        after = page["last_id"]


@contextmanager
def emulator_settings(stack: Stack, *args: str):
    """Restart the stack's emulator (same state, same port) with other settings ``args``, and with its own again
    afterwards."""
    before = stack.emulator_args
    stack.kill("emulator")
    stack.emulator_args = args
    stack.restart("emulator")
    try:
        yield
    finally:
        stack.kill("emulator")
        stack.emulator_args = before
        stack.restart("emulator")


def anthropic_connection(stack_port: int, conn_id: str = "anthropic_emulator") -> dict[str, str]:
    """A stack's environment for an ``anthropic`` connection ``conn_id`` on the emulator at ``stack_port`` that the
    shipped DAG's ``conn_id`` Param may name (beside ``openai_default``)."""
    import json

    conn = {"conn_type": "anthropic", "password": "k", "host": f"http://127.0.0.1:{stack_port}"}
    return {
        f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn),
        "OPENAI_BATCH_ALLOWED_API_CONNS": f"openai_default,{conn_id}",
    }


def message_batches(stack: Stack) -> list[Any]:
    """Every Anthropic message batch the stack's emulator holds, newest first (the anthropic SDK's types)."""
    from anthropic import Anthropic

    client = Anthropic(base_url=stack.emulator.url, api_key="k", max_retries=6)
    return list(client.messages.batches.list(limit=100))


def message_batch_requests(stack: Stack, batch_id: str) -> list[str]:
    """The custom_ids (as sent, tagged) of every request of an ended message batch: its results name each one,
    answered or not (succeeded, errored, canceled, expired)."""
    from anthropic import Anthropic

    client = Anthropic(base_url=stack.emulator.url, api_key="k", max_retries=6)
    return [result.custom_id for result in client.messages.batches.results(batch_id)]


def staged_run(
    tmp_path: Path,
    ids: list[int],
    errors: Iterable[str] = (),
    unanswered: Iterable[str] = (),
    partition: str = "2026-11-24",
    run_id: str = "manual__1",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A run's staging area as the split and collect steps leave it: rows ``ids`` split into the run's
    ``inputs/``, answered ``ok`` in the partition's ledger except ``errors`` (a final 400) and ``unanswered``.

    :returns: the load operator's ``split`` and ``staging_root`` arguments, and a task context.
    """
    import json
    from types import SimpleNamespace

    import pyarrow as pa
    import pyarrow.parquet as pq

    from batchkit.ledger import Ledger
    from batchkit.results.result_line import Result
    from batchkit.results.results import from_results, write_results
    from batchkit.split.batch_inputs import fingerprints
    from batchkit.split.splitter import SplitConfig, split

    root, errors, unanswered = tmp_path / "staging", set(errors), set(unanswered)
    tmp_path.mkdir(parents=True, exist_ok=True)
    inputs = root / "d" / partition / run_id / "inputs"
    source = tmp_path / "source.parquet"
    pq.write_table(pa.table({"id": ids, "text": [f"review {i}" for i in ids]}), source)
    split(str(source), inputs, SplitConfig(model="m", prompt_column="text", id_column="id"))
    ledger = Ledger.for_partition(str(root), "d", partition)
    for batch_file in sorted(inputs.glob("batch-*.jsonl")):
        answers = []
        for line in map(json.loads, batch_file.read_bytes().splitlines()):
            cid = line["custom_id"]
            if cid in errors:
                answers.append(Result(cid, "batch_1", "error", http_status=400, error_code="bad", error_message="no"))
            elif cid not in unanswered:
                answers.append(Result(cid, "batch_1", "ok", http_status=200, response_text=f"answer {cid}"))
        write_results(from_results(answers), fingerprints(batch_file), 1, tmp_path / "results.parquet")
        ledger.record_results("batch_1", tmp_path / "results.parquet")
    arguments = {
        "split": {"rows": str(inputs / "rows.parquet"), "manifest": str(inputs / "manifest.json"), "dry_run": False},
        "staging_root": str(root),
    }
    xcoms: dict[str, Any] = {}  # what the task pushed, by key
    ti = SimpleNamespace(dag_id="d", run_id=run_id, task_id="load", map_index=-1, xcoms=xcoms)
    ti.xcom_push = lambda key, value: xcoms.__setitem__(key, value)
    context = {"params": {"partition": partition}, "run_id": run_id, "dag": SimpleNamespace(dag_id="d"), "ti": ti}
    return arguments, context


def s3_lake(endpoint: str, local: Path, partition: str, rows: int, prefix: str) -> tuple[Any, str]:
    """A new bucket on the S3 ``endpoint`` holding a sample partition at ``reviews/dt=<partition>/``; returns the
    s3fs filesystem and the bucket name."""
    import secrets

    import s3fs

    fs = s3fs.S3FileSystem(
        key="testing", secret="testing", client_kwargs={"endpoint_url": endpoint}, use_listings_cache=False
    )
    bucket = f"{prefix}-{secrets.token_hex(4)}"
    fs.mkdir(bucket)
    write_sample_partition(local / f"dt={partition}", rows, files=3)
    for path in sorted((local / f"dt={partition}").iterdir()):
        fs.put_file(str(path), f"{bucket}/reviews/dt={partition}/{path.name}")
    return fs, bucket


def split_descriptors(split_dir: Path, manifest: Any, partition: str = "p") -> list[dict[str, Any]]:
    """The split operator's XCom for a split written to ``split_dir`` by ``batchkit.split.splitter.split``."""
    from openai_batch.operators.split import batch_files

    paths = [str(split_dir / f.path) for f in manifest.files]
    return batch_files(manifest, paths, str(split_dir / "manifest.json"), partition)


def split_lines(directory: Path) -> list[dict]:
    """Every request line of the batch files a split wrote to ``directory``."""
    import json

    return [json.loads(line) for f in sorted(directory.glob("batch-*.jsonl")) for line in f.read_bytes().splitlines()]


def split_config(**kw: Any) -> Any:
    """A ``SplitConfig`` for tests: model gpt-4o-mini and prompt column ``text`` unless given."""
    from batchkit.split.splitter import SplitConfig

    kw.setdefault("model", "gpt-4o-mini")
    if "prompt_template" not in kw:
        kw.setdefault("prompt_column", "text")
    return SplitConfig(**kw)


def ok_line(custom_id: str, text: str = "fine") -> dict:
    """A batch output line answering ``custom_id`` with HTTP 200 and ``text``."""
    return {
        "id": "batch_req_1",
        "custom_id": custom_id,
        "error": None,
        "response": {
            "status_code": 200,
            "request_id": "req_1",
            "body": {
                "object": "chat.completion",
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12},
            },
        },
    }


def error_line(custom_id: str, status: int | None, code: str | None, message: str = "boom") -> dict:
    """A batch error-file line for ``custom_id`` (``status`` None: an error without a response)."""
    if status is None:
        return {"id": "x", "custom_id": custom_id, "response": None, "error": {"code": code, "message": message}}
    return {
        "id": "x",
        "custom_id": custom_id,
        "error": None,
        "response": {"status_code": status, "request_id": "r", "body": {"error": {"code": code, "message": message}}},
    }


def moderation_line(custom_id: str, flagged: list[str]) -> dict:
    """A batch output line answering a moderation request (``flagged``: the categories it flags), as the official
    SDK's types write the body (aliases such as ``self-harm/intent``)."""
    from openai.types import ModerationCreateResponse
    from openai.types.moderation import Categories

    names = [f.alias or name for name, f in Categories.model_fields.items()]
    result = {
        "flagged": bool(flagged),
        "categories": {name: name in flagged for name in names},
        "category_scores": {name: (0.9 if name in flagged else 0.01) for name in names},
        "category_applied_input_types": {name: ["text"] for name in names},
    }
    body = {"id": "modr-1", "model": "omni-moderation-2024-09-26", "results": [result]}
    body = ModerationCreateResponse.model_validate(body).model_dump(mode="json", by_alias=True, exclude_none=True)
    response = {"status_code": 200, "request_id": "req", "body": body}
    return {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": response, "error": None}


def moderated_partition(tmp_path: Path, write_parquet: Callable[[str, dict], Path]) -> tuple[str, list[str]]:
    """A moderation split of rows a, b, c, d (d's prompt null: skipped) answered by one output file: a not flagged,
    b flagged for harassment, c a server error (first in the file). Returns the staged rows and the ledger file."""
    import json

    from batchkit.results.results import result_batches, write_results
    from batchkit.split.batch_inputs import fingerprints
    from batchkit.split.splitter import split

    src = write_parquet("p.parquet", {"id": ["a", "b", "c", "d"], "text": ["kind", "mean", "awful", None]})
    config = split_config(model="omni-moderation-latest", endpoint="/v1/moderations", id_column="id")
    split(str(src), tmp_path / "o", config)
    lines = [error_line("c", 500, "server_error"), moderation_line("a", []), moderation_line("b", ["harassment"])]
    output = tmp_path / "output.jsonl"
    output.write_text("".join(json.dumps(line) + "\n" for line in lines))
    ledger = tmp_path / "ledger" / "1-0.parquet"
    source = lambda per_line: result_batches([output], "batch_1", per_line)  # noqa: E731
    assert write_results(source, fingerprints(tmp_path / "o" / "batch-00000.jsonl"), 1, ledger, expected=3) == 3
    return str(tmp_path / "o" / "rows.parquet"), [str(ledger)]
