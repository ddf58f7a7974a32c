"""The gRPC door: servicers that translate ``lightningstor.v1`` calls into ObjectStore calls.

A call passes two interceptors before its servicer method runs: ``errors`` (outermost, turns
any exception into a gRPC status) and ``auth`` (verifies the signed token, records the caller).
The servicers (``buckets``, ``objects``) parse, make one core call and render.
"""
