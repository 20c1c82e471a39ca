"""embspace.compute (its face comes in the next commit)."""
