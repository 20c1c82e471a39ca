"""embspace.annotations (its face comes in the next commit)."""
