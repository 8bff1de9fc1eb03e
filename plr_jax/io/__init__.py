"""Checkpoints and progress output."""
