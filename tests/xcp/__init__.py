"""Tests of the XCP provider against the XAPI simulator (real XenAPI client, real XML-RPC)."""
