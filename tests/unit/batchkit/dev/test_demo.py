"""``make demo VENDOR=...``: each vendor's connection on the demo stack names that vendor."""

import pytest
from airflow.models.connection import Connection

from batchkit.dev.demo import VENDORS, main, vendor_connections
from openai_batch.vendors import vendor_name_of


def test_each_vendor_of_the_demo_has_an_allowed_connection_that_names_it_and_its_own_partition():
    env = vendor_connections("http://127.0.0.1:8000")
    assert env["OPENAI_BATCH_ALLOWED_API_CONNS"].split(",") == [v.conn_id for v in VENDORS.values()]
    assert len({v.partition for v in VENDORS.values()}) == len(VENDORS)  # no vendor reuses another's answers
    for name, vendor in VENDORS.items():
        if name == "openai":
            continue  # openai_default: the stack's own connection (devstack)
        conn = Connection.from_json(env[f"AIRFLOW_CONN_{vendor.conn_id.upper()}"], conn_id=vendor.conn_id)
        assert vendor_name_of(conn) == name


def test_an_unknown_vendor_is_refused_before_anything_starts(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["--root", str(tmp_path), "--vendor", "mistral"])
    assert "invalid choice: 'mistral'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
