"""reconciler.daemon: ``reconciler run`` — loop, cycle, HTTP, alerts, autoscale, failover, git source.
"""
