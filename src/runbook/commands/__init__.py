"""What each command does; `runbook.cli` only declares the commands and their options and calls in here.

Each function takes plain values (paths, names, flags) and returns a report or an exit code: none of
them knows Typer's options, and none ends the process (`runbook.process` does).
"""
