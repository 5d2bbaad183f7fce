"""providers.xcp: XCP-ng / XenServer pools through XAPI, as ``type: xcp``.

Importing ``provider`` registers the provider type; ``spec`` declares what a Provider document
of the type may say and what the type can do, and imports no SDK (``validate`` reads only
it). The package itself imports nothing. Its modules:

* ``provider``: the provider class (``XcpProvider``) and the decisions it makes;
* ``spec``: the JSON Schema of a Provider's ``spec`` and the type's ``Capabilities``;
* ``wire``: the XAPI wire — transport, sessions, errors, codecs.
"""
