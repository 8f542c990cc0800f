"""Pure domain rules: no database, store, web or queue imports."""
