"""One module per DVC stage: parse arguments, read params.yaml, call audiorec, write outputs."""
