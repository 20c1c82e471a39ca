"""W_QK of one attention head: which key tokens a query token attends to (rows queries, columns keys)."""

from dashboard.head_view import head_page

head_page("qk")
