"""`docsbot`, the command line: everyday commands (index, ask, eval, demo, serve) in
`everyday`, the operators' ones (scheduler, runs, stats, reports, db, manifest, config) in
`operators`. Module tops import only typer and rich, so `docsbot --help` stays quick; each
command imports what it needs when it runs."""

from bot.cli.app import main

__all__ = ["main"]
