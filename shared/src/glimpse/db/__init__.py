"""Database access: engine set-up, table models, repositories and migrations."""
