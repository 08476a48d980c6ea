"""``make demo``: the main job end to end on the embedded defaults (replaced by the Airflow DAG run)."""

import sys


def main() -> int:
    print("demo: not wired yet", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
