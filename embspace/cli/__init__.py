"""embspace.cli (its face comes in the next commit)."""
