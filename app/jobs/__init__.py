"""Training jobs on the API's side: dispatch to workers, and the reaper that keeps jobs moving."""
