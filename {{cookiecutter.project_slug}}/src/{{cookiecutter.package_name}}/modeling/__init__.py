"""The models: the catalog, estimators from conf/model/, the feature transformation and the
business metric."""
