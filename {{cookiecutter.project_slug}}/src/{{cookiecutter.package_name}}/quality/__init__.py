"""How good the labels and the model are: label issues, the diagnosis (per class, per group,
recent rows) and permutation importance."""
