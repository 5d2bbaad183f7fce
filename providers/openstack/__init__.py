"""providers.openstack: OpenStack Nova servers as ``type: openstack``.

Importing ``provider`` registers the provider type; ``spec`` declares what a Provider document
of the type may say and what the type can do, and imports no SDK (``validate`` reads only
it). The package itself imports nothing. Its modules:

* ``provider``: the provider class (``OpenStackProvider``) and the decisions it makes;
* ``spec``: the JSON Schema of a Provider's ``spec`` and the type's ``Capabilities``;
* ``api``: the settings and the one door to the Nova API (connection, errors, paging);
* ``common``: how Nova's servers, flavors and images map onto our model (no I/O).
"""
