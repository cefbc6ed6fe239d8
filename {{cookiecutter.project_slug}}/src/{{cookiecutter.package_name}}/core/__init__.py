"""What every part of the package shares: params and their composition from conf/, paths,
errors, atomic reads and writes, progress lines, cores and the dask cluster."""
