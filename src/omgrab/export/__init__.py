"""Export merged recordings to formats robotics tools read (MCAP for Foxglove).

The heavy dependencies (``mcap``, ``mcap-protobuf-support``, ``foxglove-schemas-protobuf``) are
in the ``export`` extra and are imported only when an export runs.
"""
