"""What the split checks before anything is sent (and paid for): the budget, the model, one request as the vendor
will take it."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from openai_batch.errors import airflow_errors


def check_budget(cost: Any, max_cost_usd: Any, log: Any) -> None:
    """Stop the run before any submit when its estimate is over ``max_cost_usd`` (or cannot be priced)."""
    if max_cost_usd in (None, ""):
        return
    cap = float(max_cost_usd)
    if cost.usd is None:
        raise AirflowFailException(
            f"max_cost_usd is ${cap:,.2f} but model {cost.model!r} has no batch price, so the run cannot be "
            "checked against it: add the model to the openai_batch_prices Variable. Nothing was submitted."
        )
    if cost.usd > cap:
        raise AirflowFailException(
            f"estimated cost ${cost.usd:,.4f} is over max_cost_usd ${cap:,.2f} ({cost.describe()}). Nothing "
            "was submitted: raise max_cost_usd, or split the partition into smaller runs."
        )
    if cost.output_tokens is None:
        log.warning("max_cost_usd checks input tokens only: %s", cost.output_basis)


def check_model(vendor: Any, model: str) -> None:
    """The model (Azure: the deployment) exists for the vendor's connection, where the vendor can tell."""
    from openai_batch.vendors.base import ModelMissing

    try:
        vendor.check_model(model)
    except ModelMissing:
        raise AirflowFailException(
            f"model {model!r} does not exist at this endpoint (or this key has no access to it); nothing was submitted"
        ) from None


def check_request(vendor: Any, config: Any, conn_id: str) -> None:
    """One request, built as the split builds them (``config``), converted as the vendor's adapter will send it:
    what the vendor cannot take fails here, before any work."""
    import orjson

    from batchkit.split.requests import RequestShape

    with airflow_errors(f"{vendor.title} cannot take these requests (connection {conn_id!r})"):
        shape = RequestShape.build(
            config.endpoint, config.model, config.system_prompt, config.body_options, config.output_schema
        )
        vendor.check_request(orjson.loads(shape.line("check", "a prompt")))
