"""Commands around the pipeline that are not stages: add a batch, compare experiments,
check dvc.yaml's deps."""
