"""The rule catalogue: a record per rule beside the lookup sets, written in the same script."""
