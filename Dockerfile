# openai-batch for Airflow: an Airflow 3.3 image with the pinned dependencies, batchkit, DAGs and plugins.
# Build: docker build -t openai-batch-airflow .   Run any component: docker run ... airflow scheduler
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/airflow/dags \
    AIRFLOW__CORE__PLUGINS_FOLDER=/opt/airflow/plugins \
    AIRFLOW__CORE__LOAD_EXAMPLES=False

RUN useradd --create-home --uid 50000 airflow && pip install --no-cache-dir uv==0.13.8
WORKDIR /opt/airflow

# Dependencies first (cached layer): the exact versions from the lock file.
COPY requirements.txt requirements.lock ./
RUN uv pip install --system --no-cache -r requirements.txt -c requirements.lock

# The project: batchkit (include/), then the Airflow layer and the DAGs.
COPY pyproject.toml README.md ./
COPY include ./include
RUN uv pip install --system --no-cache --no-deps .
COPY plugins ./plugins
COPY dags ./dags

USER airflow
EXPOSE 8080
CMD ["airflow", "api-server"]
