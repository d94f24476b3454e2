"""Corpora in, verified WebDataset shards out, streamed to training workers."""
