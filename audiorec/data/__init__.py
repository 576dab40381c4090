"""Datasets: the Music4All reader, the synthetic generator and the time split."""
