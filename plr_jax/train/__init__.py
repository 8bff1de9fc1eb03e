"""Training: losses, optimiser gates, strategies, replay, steps and the task loop."""
