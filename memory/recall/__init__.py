"""Recall: passages and queries, the per-guild full-text index, ranking, and the service that keeps
the index in step with the store.
"""
