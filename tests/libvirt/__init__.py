"""Tests of the libvirt provider: the in-process test driver, and a real libvirtd where one runs."""
