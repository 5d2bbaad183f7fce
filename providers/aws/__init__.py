"""providers.aws: Amazon EC2 (and EC2-compatible endpoints) as ``type: aws``.

Importing the package registers the provider type. Its modules:

* ``provider``: the provider class (``AwsProvider``) and the decisions it makes;
* ``api``: the one door to EC2 and CloudWatch (botocore session, counted calls, pages, waits);
* ``common``: the pure tables and translations (instance types, errors, spec, mappings);
* ``metrics``: usage counters for measured billing computed from CloudWatch's hourly sums;
* ``memo``: the local memo of those sums in the state directory.
"""

from providers.aws.provider import AwsProvider

__all__ = ["AwsProvider"]
