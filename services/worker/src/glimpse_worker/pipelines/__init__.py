"""Async job bodies: each takes a WorkerRuntime and ids, and is safe to run again."""
