"""lottery: the operator's command line for the weekly lottery database, on Click.

    lottery [--database-url URL] COMMAND ...        (or: python -m db.cli ...)

`lottery --help` lists the commands, `lottery COMMAND --help` explains one. One
module per command family: draws (draw, status), fold, ingest (the command) with
ingest_parse (lines -> COPY text, no database) and ingest_load (staging and COPY),
demo with demo_data (the generator, no database), tokens (token, welcome); common
(database option, connections, errors) and output (formatting, tables, progress)
serve them all, app assembles the group.
"""

from db.cli.app import main

__all__ = ["main"]
