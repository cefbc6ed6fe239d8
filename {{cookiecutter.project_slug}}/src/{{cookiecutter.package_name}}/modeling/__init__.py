"""The models: estimators from conf/model/, the feature transformation and the
business metric."""
