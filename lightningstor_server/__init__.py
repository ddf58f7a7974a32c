"""The LightningSTOR daemon: configuration, lifecycle, the S3 gateway and the gRPC servicers."""
