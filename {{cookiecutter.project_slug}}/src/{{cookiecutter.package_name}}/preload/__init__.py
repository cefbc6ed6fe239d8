"""Stages at the speed of one process: a fork server that has imported the libraries.

Each `dvc repro` stage is a new `python -m {{ cookiecutter.package_name }} <stage>` process,
and on small data most of its time went to importing pandas, scikit-learn and pyarrow.
When DVC runs a stage (it sets DVC_STAGE), client.py hands the command to a server of
this project that has imported them once (server.py); the server forks, and the child
runs the command as the process would have, with the caller's argv, environment, working
directory, stdin/stdout/stderr, exit status and signals. No module of this package is
ever loaded in the server: a child imports the project from disk, so an edit counts at
once. docs/pipeline.md "Speed" tells the rest; REALITYLOOP_PRELOAD=0 turns it off.
"""
