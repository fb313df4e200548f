"""The hospital worker: the data holder's side of federated training (issue 14).

It runs where the hospital's records may be read and nothing else of the server is: a Celery worker on
the queue `hospital.<slug>` with the hospital account's key, the API's URL, the content store and a
read-only view of the chain. It has no database credentials and no KEK, and imports nothing that would
use them: `client` talks to the API over HTTP (requests signed with the hospital key), `chain` reads
TrainingRegistry with eth_call, `local_round` is one round's logic as plain functions, `runtime` holds
the process's connections, `tasks` is the thin Celery task around it.
"""
