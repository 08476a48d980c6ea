"""The load's guard: whether a partition's merged results may replace what the table holds."""

from ..errors import ResultsIncomplete, ResultsRejected


def check_results(
    counts: dict[str, int],
    merged: str,
    partition: str,
    table: str,
    max_error_rate: float,
    max_invalid_output_rate: float,
) -> None:
    """Refuse incomplete or too faulty results (the caller then leaves the table as it was).

    :param counts: the merge's ``rows``, ``errors``, ``invalid`` and ``unanswered``.
    :param merged: where the merged results are kept (named in the refusal, with how to load them anyway).
    :raises ResultsIncomplete: requests without an answer (transient: a later run may answer them).
    :raises ResultsRejected: errors or invalid outputs over their rates.
    """
    kept = f"the table was left unchanged; the merged results are kept at {merged}"
    if counts["unanswered"]:
        raise ResultsIncomplete(
            f"{counts['unanswered']} request(s) of partition {partition} have no answer in the ledger; {kept}"
        )
    limits = (
        ("ended in error", counts["errors"] - counts["invalid"], "max_error_rate", max_error_rate),
        (
            "got an answer that does not follow the output schema",
            counts["invalid"],
            "max_invalid_output_rate",
            max_invalid_output_rate,
        ),
    )
    for what, count, name, limit in limits:
        rate = count / max(1, counts["rows"])
        if rate > float(limit):
            raise ResultsRejected(
                f"{count} of {counts['rows']} rows ({rate:.1%}) {what}, over {name} {float(limit):.1%}: {kept}. "
                f"To load them anyway: `batchkit load {merged} --table {table} --partition {partition}` "
                f"(see the README), or run the partition again (only the unanswered requests are sent) with a "
                f"higher {name}"
            )
