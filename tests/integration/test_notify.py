"""Run notifications through the real smtp and Slack providers to local receivers on 127.0.0.1: an aiosmtpd SMTP
server (with a login) and an HTTP server standing in for Slack's incoming webhook.

Here the DAG's callbacks called as the dag-processor calls them; test_dag_e2e's stack sends to the same receivers
for its real runs (a degraded and failed ones), on the real dag-processor.
"""

from types import SimpleNamespace

from batchkit.dev.devstack import REPO
from tests.integration.receivers import SLACK_TOKEN

DAG_ID = "openai_batch_inference"


def test_the_dag_callbacks_send_a_failure_by_mail_and_slack(receivers, monkeypatch):
    """The DAG file parsed with the settings, its failure callback called as the dag-processor calls it: with the
    context of the failed task instance."""
    from airflow.dag_processing.dagbag import DagBag

    from openai_batch.notify import ERROR_KEY, record_error

    received, env = receivers
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    dag = DagBag(dag_folder=str(REPO / "dags" / f"{DAG_ID}.py")).dags[DAG_ID]
    assert dag.get_task("split").on_failure_callback == [record_error]
    load = {"partition": "2026-11-24", "input_rows": 500, "merged": 500, "results_ok": 300, "results_error": 200}
    xcoms = {("load", "return_value"): load, ("load", ERROR_KEY): "200 of 500 rows (40.0%) ended in error"}

    def xcom_pull(*, task_ids, key, map_indexes):
        return xcoms.get((task_ids, key))

    ti = SimpleNamespace(task_id="load", map_index=-1, xcom_pull=xcom_pull)
    context = {"dag": dag, "run_id": "cb_1", "ti": ti, "params": {}, "reason": "task_failure"}
    dag.on_failure_callback(context)

    mail, slack = received.about("cb_1")
    for text in (mail, slack):
        assert f"[failed] {DAG_ID} run cb_1 (partition 2026-11-24)" in text
        assert "Failed task: load" in text and "ended in error" in text and "in error: 200" in text
        assert f"/dags/{DAG_ID}/runs/cb_1" in text
    assert received.posts[-1][0] == f"/services/{SLACK_TOKEN}"  # the token only in the webhook's path
