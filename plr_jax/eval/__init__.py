"""Evaluation: accuracy, mFID, results records and figures."""
