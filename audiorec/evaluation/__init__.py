"""Evaluation: the ranking protocol that turns a fitted model into ranked lists per split
(`ranking`), paired significance tests between runs (`significance`), and the tables and
plots of the report (`report`). The metrics themselves live in `audiorec.metrics`, beside
`audiorec.retrieval`: models use both during training (validation, early stopping), so
neither can sit below a room that imports the models."""
