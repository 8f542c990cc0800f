"""The image cache's node-local parts: its directory (files.py) and single-flight fills
(fill.py). Its state in the database and its policy live in services/image_cache.py."""
