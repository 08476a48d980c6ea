"""`batchkit split` on random bad Parquet files and random bad arguments: it exits 0 or 2, never with a traceback,
and never writes outside --out. main() runs in-process (a subprocess per example would be too slow)."""

import contextlib
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from batchkit.cli import main

NAMES = ["id", "text", "Text", "tags"]
COLUMNS = {
    "text": st.lists(st.one_of(st.none(), st.text(max_size=20)), min_size=3, max_size=3).map(pa.array),
    "int": st.lists(st.one_of(st.none(), st.integers(-3, 3)), min_size=3, max_size=3).map(pa.array),
    "bytes": st.lists(st.binary(max_size=4), min_size=3, max_size=3).map(pa.array),
    "fixed": st.lists(st.binary(min_size=2, max_size=2), min_size=3, max_size=3).map(
        lambda v: pa.array(v, pa.binary(2))
    ),
    "list": st.just(pa.array([["a"], [], None])),
    "struct": st.just(pa.array([{"a": "x"}, None, {"a": "y"}])),
    "null": st.just(pa.nulls(3)),
}


@st.composite
def parquet_bytes(draw: st.DrawFn) -> bytes:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3, unique=True))
    table = pa.table({n: draw(st.sampled_from(sorted(COLUMNS)).flatmap(COLUMNS.get)) for n in names})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    data = bytearray(sink.getvalue())
    damage = draw(st.sampled_from(["none", "truncate", "flip", "garbage"]))
    if damage == "truncate":
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif damage == "flip":
        for i in draw(st.lists(st.integers(0, len(data) - 1), min_size=1, max_size=8)):
            data[i] ^= 0xFF
    elif damage == "garbage":
        data = bytearray(draw(st.binary(max_size=64)))
    return bytes(data)


ARGS = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["file", "dir", "glob", "missing"]),
        "out": st.sampled_from(["new", "new", "new", "under a file", "foreign", "file url"]),
        "prompt": st.one_of(
            st.tuples(st.just("--prompt-column"), st.sampled_from([*NAMES, "nope", ""])),
            st.tuples(st.just("--prompt-template"), st.sampled_from(["{text}", "{tags} {id}", "{Text}!", "{", "x"])),
            st.tuples(st.just("--prompt-template"), st.text(alphabet="{}!:.[]text0 ", max_size=12)),
        ),
        "options": st.just([])
        | st.lists(
            st.sampled_from(
                [
                    ("--id-column", "id"),
                    ("--id-column", "text"),
                    ("--max-requests", "0"),
                    ("--max-requests", "1"),
                    ("--max-bytes", "1"),
                    ("--max-bytes", "lots"),
                    ("--max-tokens", "-1"),
                    ("--endpoint", "/v1/embeddings"),
                    ("--system-prompt", "be brief"),
                    ("--body-json", '{"model": "x"}'),
                    ("--body-json", "[1"),
                    ("--model", ""),
                ]
            ),
            max_size=2,
        ),
    }
)


def snapshot(root: Path, skip: Path) -> dict[str, tuple[int, int]]:
    """Every entry under ``root`` outside ``skip``: (size, mtime)."""
    return {
        str(p): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
        if p != skip and skip not in p.parents
    }


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(parquet_bytes(), min_size=1, max_size=2), args=ARGS)
def test_split_exits_0_or_2_and_writes_only_its_out(tmp_path_factory, monkeypatch, files, args):
    base = tmp_path_factory.mktemp("fuzz")
    monkeypatch.chdir(base)  # anything written relative to the working directory would show up in the snapshot
    (base / "src").mkdir()
    for index, data in enumerate(files):
        (base / "src" / f"part-{index}.parquet").write_bytes(data)
    source = {
        "file": base / "src" / "part-0.parquet",
        "dir": base / "src",
        "glob": base / "src" / "part-*.parquet",
        "missing": base / "nothing",
    }[args["source"]]
    out = {"new": base / "out", "under a file": base / "src" / "part-0.parquet" / "out", "foreign": base / "out"}.get(
        args["out"], base / "out"
    )
    if args["out"] == "foreign":
        out.mkdir()
        (out / "mine.txt").write_text("keep")
    out_arg = f"file://{out}" if args["out"] == "file url" else str(out)
    argv = ["split", str(source), "--out", out_arg, "--model", "m", "--quiet", *args["prompt"]]
    argv += [value for option in args["options"] for value in option]
    before = snapshot(base, out)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse refuses bad arguments with exit 2
            code = exc.code
    event(f"exit {code}")
    assert code in (0, 2), (argv, stderr.getvalue())
    assert "Traceback" not in stderr.getvalue()
    assert snapshot(base, out) == before, f"wrote outside --out: {argv}"
    if args["out"] == "foreign":
        assert (out / "mine.txt").read_text() == "keep"
