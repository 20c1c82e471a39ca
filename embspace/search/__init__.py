"""embspace.search (its face comes in the next commit)."""
