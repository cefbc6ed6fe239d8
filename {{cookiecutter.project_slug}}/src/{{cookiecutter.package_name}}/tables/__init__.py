"""The data as tables: the schema and column roles, batch files, row hashes, folders of
Parquet parts and row budgets."""
