"""providers.libvirt: KVM/QEMU hosts through libvirt, as ``type: libvirt``.

Importing ``provider`` registers the provider type (and so needs libvirt-python); ``spec``
declares what a Provider document of the type may say and what the type can do, and imports
no SDK (``validate`` reads only it). The package itself imports nothing. Its modules:

* ``provider``: the provider class (``LibvirtProvider``) and the decisions it makes;
* ``spec``: the JSON Schema of a Provider's ``spec`` and the type's ``Capabilities``;
* ``wire``: the libvirt connection — counted calls, errors mapped onto the error tree;
* ``domain``: reading, defining and powering domains;
* ``storage``: volumes — image lookup, disks, seeds, removal;
* ``backup``: image backups, standalone disk copies that outlive their server;
* ``xml``: the domain, volume and snapshot XML written and read, with our marks;
* ``seed``: the cloud-init NoCloud seed ISO, built in memory.
"""
