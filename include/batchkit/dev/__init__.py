"""Dev-only: the local Airflow stack, ``make demo``, an Airflow REST client and sample data.

Runs from a checkout (it finds the repository from its own path); not part of the installed wheel."""
