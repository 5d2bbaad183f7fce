"""providers.openstack: OpenStack Nova servers as ``type: openstack``.

Importing the package registers the provider type. Its modules:

* ``provider``: the provider class (``OpenStackProvider``) and the decisions it makes;
* ``api``: the settings and the one door to the Nova API (connection, errors, paging);
* ``common``: how Nova's servers, flavors and images map onto our model (no I/O).
"""

from providers.openstack.provider import OpenStackProvider

__all__ = ["OpenStackProvider"]
