"""Job names and broker configuration shared by the API (publisher) and the worker."""
