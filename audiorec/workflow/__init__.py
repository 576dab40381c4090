"""The DVC tooling around the pipeline, not part of it: comparing runs (`compare`), checking
that the committed dvc.lock matches the code (`lockcheck`), queued sweeps (`sweep`), the
outdated stages run as Ray tasks (`cluster`), and the scratch copies of the repository that
tests and benchmarks run in (`worktree`)."""
