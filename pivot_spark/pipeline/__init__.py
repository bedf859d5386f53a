"""Spark jobs: each reads pinned table versions, calls pure steps on Arrow batches, commits its outputs."""
