"""The ground the API (`app/`) and the workers (`worker/`) both stand on: settings, the database
and its schema history, the tables, the job state machine, data-set lookup, the artifact store's
layout and the task queue's contract. It imports neither side."""
