"""One fake per real service, each a real aiohttp server on 127.0.0.1 (see each module)."""
