"""embspace.model (its face comes in the next commit)."""
