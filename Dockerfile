# openai-batch for Airflow on the official Airflow image: the package (operators, trigger, core, emulator) installed
# as the airflow user with this project's tested versions as constraints, the project's DAGs, writable absolute
# data paths. Every component runs from it: docker compose (docker-compose.yaml), the Helm chart, ECS, ...
#   docker build -t openai-batch-airflow .
#   docker run --rm openai-batch-airflow airflow providers list
FROM apache/airflow:3.3.2-python3.11

# Absolute, writable defaults (the image's AIRFLOW_HOME belongs to the airflow user). On more than one host,
# point OPENAI_BATCH_STAGING at s3://... and the warehouse at PostgreSQL: local paths are per container.
ENV OPENAI_BATCH_DATA=/opt/airflow/data \
    OPENAI_BATCH_STAGING=/opt/airflow/data/staging \
    OPENAI_BATCH_DUCKDB=/opt/airflow/data/warehouse.duckdb \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

# The official image's way: pip as the airflow user, with Airflow itself pinned to the image's version. The lock
# is used as constraints without its hashes (hashes would put pip in hash-checking mode, which a local path fails).
COPY --chown=airflow:root requirements.lock /tmp/requirements.lock
COPY --chown=airflow:root pyproject.toml README.md /tmp/pkg/
COPY --chown=airflow:root include /tmp/pkg/include
COPY --chown=airflow:root plugins /tmp/pkg/plugins
RUN sed -E '/^ +--hash=/d; s/ \\$//' /tmp/requirements.lock > /tmp/constraints.txt \
    && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "/tmp/pkg[s3,postgres,celery,emulator,report,notify]" \
        --constraint /tmp/constraints.txt \
    && rm -rf /tmp/pkg /tmp/constraints.txt /tmp/requirements.lock \
    && mkdir -p /opt/airflow/data/staging

COPY --chown=airflow:root dags /opt/airflow/dags
