"""bulletin's Prefect flows, installed as `bulletin.flows`: the pipeline's steps as tasks,
and only Prefect's concerns (tasks, retries, artifacts, pause and resume, task runners).
deployments/prefect.yaml names them by file: flows/publish.py:publish, ...
"""
