"""Datasets on disk and the frozen-extractor feature cache."""
