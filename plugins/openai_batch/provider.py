"""Provider metadata: the ``apache_airflow_provider`` entry point, so ``airflow providers list`` shows the package."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "airflow-provider-openai-batch"


def get_provider_info() -> dict:
    """What Airflow's ProvidersManager reads. Connection types are not registered here: the package uses those of
    other providers (``openai``, ``aws``, ``postgres``, ``redshift``), and registering one twice is refused."""
    try:
        versions = [version(DISTRIBUTION)]
    except PackageNotFoundError:  # imported from the Astro project's plugins/ without installing
        versions = []
    return {
        "package-name": DISTRIBUTION,
        "name": "OpenAI Batch",
        "description": "Large LLM jobs through the OpenAI Batch API: split Parquet partitions, submit once, wait on "
        "the triggerer, merge results and load a warehouse. Uses the connection types openai "
        "(apache-airflow-providers-openai), aws (S3 staging), postgres and redshift (warehouses).",
        "versions": versions,
        "integrations": [
            {"integration-name": "OpenAI Batch", "external-doc-url": "https://platform.openai.com/docs/guides/batch"}
        ],
        "operators": [
            {"integration-name": "OpenAI Batch", "python-modules": ["openai_batch.operators"]},
        ],
        "sensors": [{"integration-name": "OpenAI Batch", "python-modules": ["openai_batch.sensors"]}],
        "hooks": [{"integration-name": "OpenAI Batch", "python-modules": ["openai_batch.hooks"]}],
        "triggers": [{"integration-name": "OpenAI Batch", "python-modules": ["openai_batch.triggers"]}],
        "extra-links": ["openai_batch.links.OpenAIBatchLink", "openai_batch.links.RunReportLink"],
    }
