"""A small client of Airflow's REST API (v2) for the local stack: trigger, clear and watch runs, read XComs."""

import json
import time
from typing import Any

import httpx


class AirflowClient:
    """REST calls against ``api_url`` (a subclass provides it); the simple auth manager lets every call in."""

    api_url: str

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        """One REST call; errors below HTTP raise ``httpx.HTTPError`` (``httpx.TransportError`` while the API
        server is down or restarting: the polling helpers below ride those out)."""
        return httpx.request(method, self.api_url + path, timeout=30, **kw)

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> None:
        response = self.api(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "logical_date": None, "conf": conf}
        )
        if response.status_code >= 300:
            raise RuntimeError(f"triggering {dag_id} failed: {response.status_code} {response.text}")

    def clear(self, dag_id: str, run_id: str) -> None:
        """Clear every task of a run (a rerun of the same run, as from the UI)."""
        response = self.api(
            "POST", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/clear", json={"dry_run": False, "only_failed": False}
        )
        if response.status_code >= 300:
            raise RuntimeError(f"clearing {run_id} failed: {response.status_code} {response.text}")

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """A task's XCom value (None when it has none)."""
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        response = self.api("GET", path, params={"deserialize": True})
        value = response.json().get("value") if response.status_code == 200 else None
        return json.loads(value) if isinstance(value, str) else value

    def poll(self, path: str) -> httpx.Response | None:
        """A GET made while polling: None while the API server cannot answer (down or restarting)."""
        try:
            return self.api("GET", path)
        except httpx.TransportError:
            return None

    def task_states(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The run's task instances; none while the API server cannot answer (e.g. restarting), for polling."""
        response = self.poll(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")
        return response.json().get("task_instances", []) if response and response.status_code == 200 else []

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600, progress: Any = print) -> dict[str, Any]:
        """Poll until the run ends; returns the run plus every task state observed (``seen``)."""
        deadline, seen, last = time.monotonic() + timeout, set(), None
        while time.monotonic() < deadline:
            response = self.poll(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if response is None or response.status_code != 200:  # the API server is restarting: ask again
                time.sleep(1)
                continue
            run = response.json()
            tasks = self.task_states(dag_id, run_id)
            seen |= {(t["task_id"], t["state"]) for t in tasks}
            summary = _summary(tasks)
            if summary != last:
                progress(f"  [{time.strftime('%H:%M:%S')}] run {run.get('state')}: {summary}")
                last = summary
            if run.get("state") in ("success", "failed"):
                return {**run, "seen": seen, "tasks": tasks}
            time.sleep(1)
        raise TimeoutError(f"run {run_id} did not finish within {timeout:.0f}s (last: {last})")


def _summary(tasks: list[dict[str, Any]]) -> str:
    counts: dict[str, dict[str, int]] = {}
    for t in tasks:
        per = counts.setdefault(t["task_id"], {})
        per[t["state"] or "none"] = per.get(t["state"] or "none", 0) + 1
    return "; ".join(
        f"{task} " + ",".join(f"{n} {s}" for s, n in sorted(states.items())) for task, states in counts.items()
    )
