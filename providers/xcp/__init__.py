"""providers.xcp: XCP-ng / XenServer pools through XAPI, as ``type: xcp``.

Importing the package registers the provider type. Its modules:

* ``provider``: the provider class (``XcpProvider``) and the decisions it makes;
* ``wire``: the XAPI wire — transport, sessions, errors, codecs.
"""

from providers.xcp.provider import XcpProvider

__all__ = ["XcpProvider"]
