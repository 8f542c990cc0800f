"""Async job bodies: each takes a WorkerContext and ids, and is safe to run again."""
