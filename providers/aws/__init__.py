"""providers.aws: Amazon EC2 (and EC2-compatible endpoints) as ``type: aws``.

Importing ``provider`` registers the provider type; ``spec`` declares what a Provider document
of the type may say and what the type can do, and imports no SDK (``validate`` reads only
it). The package itself imports nothing. Its modules:

* ``provider``: the provider class (``AwsProvider``) and the decisions it makes;
* ``spec``: the JSON Schema of a Provider's ``spec``, the instance type table, the type's
  ``Capabilities``;
* ``api``: the one door to EC2 and CloudWatch (botocore session, counted calls, pages, waits);
* ``common``: the pure translations (the instance type rule, errors, settings, mappings);
* ``metrics``: usage counters for measured billing computed from CloudWatch's hourly sums;
* ``memo``: the local memo of those sums in the state directory.
"""
