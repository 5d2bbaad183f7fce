"""providers.simcloud: the built-in simulated cloud, as ``type: simcloud``.

Importing ``provider`` registers the provider type; ``spec`` declares what a Provider document
of the type may say and what the type can do, and imports no SDK (``validate`` reads only
it). The package itself imports nothing. Its modules:

* ``provider``: the provider class (``SimCloud``), standing behind the same contract as the
  cloud providers, with latency and faults on demand;
* ``spec``: the JSON Schema of a Provider's ``spec`` and the type's ``Capabilities``;
* ``storage``: the SQLite world it keeps in a file of the state directory (whose name the
  spec may choose, within that directory), its rows, faults and synthetic usage;
* ``admin``: the world behind our back — the admin operations behind ``reconciler simcloud``
  (offered to the CLI as the type's ``FaultInjector``) and fault injection for tests.
"""
