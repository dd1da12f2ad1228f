"""The fleet index: a Parquet table of every recording in a bucket (pyarrow, ``fleet`` extra)."""
