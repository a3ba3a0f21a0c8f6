"""Storage backends; each is chosen by its URL scheme (see ``sessionstore.urls``)."""

__all__: list[str] = []
