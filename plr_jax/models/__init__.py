"""Networks: architectures, layers, the classifier and the generators."""
