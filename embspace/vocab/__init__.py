"""embspace.vocab (its face comes in the next commit)."""
