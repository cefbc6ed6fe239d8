"""One module per pipeline phase: pure functions that do the work, taking and returning
tables, models and the params they need, and a main() that reads, calls them and writes.

STAGES is the one list of the pipeline's stages, in the order they run: the command line
(__main__.COMMANDS) offers one command per entry, and tests check that dvc.yaml's stages
are these, in this order (fetch, once per data.fetch source, comes first).
"""

STAGES = ("ingest", "clean", "annotate", "preprocess", "select", "train", "evaluate", "export")
