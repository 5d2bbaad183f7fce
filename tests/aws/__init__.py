"""Tests of the AWS EC2 provider against a real moto_server over HTTP."""
