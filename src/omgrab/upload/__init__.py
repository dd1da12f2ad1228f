"""Upload of completed recordings to S3-compatible storage (resumable, verified).

boto3 is in the ``upload`` extra and is imported only when a client is built.
"""
