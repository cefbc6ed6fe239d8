"""Serving the exported model over HTTP: which model (registry), the request schema
(request), the prediction log (prediction_log) and the FastAPI app (app)."""
