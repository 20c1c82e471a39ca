"""W_VO of one attention head: the token it promotes when it attends to a token (rows read, columns written)."""

from dashboard.head_view import head_page

head_page("vo")
