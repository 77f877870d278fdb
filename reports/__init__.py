"""Certification reports: writers, the certificate's JSON Schema and HTML templates.

Reads conformance results; never the model.
"""
