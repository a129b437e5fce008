"""The review side of the product: local sign-in accounts (admin CLI), synthetic review
data for plan tests and the benchmark. The review logic itself lives in SQL
(sql/50x_review_*.sql, docs/review.md)."""
