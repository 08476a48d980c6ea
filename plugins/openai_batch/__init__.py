"""The Airflow layer of openai-batch: hook, operators, deferrable sensor and trigger.

Lives in ``plugins/`` so the scheduler, workers and the triggerer can all import it
(Airflow puts the plugins folder on ``sys.path``).
"""
