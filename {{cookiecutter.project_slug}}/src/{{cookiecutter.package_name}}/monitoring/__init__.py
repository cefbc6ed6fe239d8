"""Watching the served model: drift of its inputs (monitor), and, from the labels that
arrive later, how right it is live."""
