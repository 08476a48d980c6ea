"""The split: a Parquet partition -> batch input files (JSONL) within the vendor's limits, plus a manifest, leaving
out what the ledger already answered."""
