"""Training jobs: the state machine over the job store, dispatch to workers, and the reaper."""
