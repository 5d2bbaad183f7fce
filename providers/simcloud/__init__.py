"""providers.simcloud: the built-in simulated cloud, as ``type: simcloud``.

Importing the package registers the provider type. Its modules:

* ``provider``: the provider class (``SimCloud``), standing behind the same contract as the
  cloud providers, with latency and faults on demand;
* ``storage``: the SQLite world it keeps in a file of the state directory (whose name the
  spec may choose, within that directory), its rows, faults and synthetic usage;
* ``admin``: the world behind our back — the admin operations behind ``reconciler simcloud``
  (offered to the CLI as the type's ``FaultInjector``) and fault injection for tests.
"""

from providers.simcloud.provider import SimCloud

__all__ = ["SimCloud"]
