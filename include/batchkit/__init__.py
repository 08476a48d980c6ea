"""batchkit: the Airflow-free core of openai-batch for Airflow.

Splits Parquet partitions into OpenAI Batch input files, emulates the Batch API
locally, parses and merges results, and loads them into warehouses.
"""

__version__ = "0.1.0"
