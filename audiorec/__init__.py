"""Frozen pretrained audio embeddings for music recommendation."""
