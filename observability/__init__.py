"""Metrics, their exposition, request and job context, logs and database timing.

The only package that imports prometheus_client.
"""
