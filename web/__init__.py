"""HTTP + WebSocket layer: a thin Starlette app over the SQL functions in db/functions/."""

__version__ = "0.1.0"
