"""The data stages on a Dask cluster (compute.engine: dask), one module per stage named as
its stages/ twin, whose pure functions it calls; no stage imports this package."""
