"""The S3-compatible HTTP gateway: a thin translator from S3 requests to ObjectStore calls."""
