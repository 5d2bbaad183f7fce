"""providers.libvirt: KVM/QEMU hosts through libvirt, as ``type: libvirt``.

Importing the package registers the provider type (and so needs libvirt-python). Its modules:

* ``provider``: the provider class (``LibvirtProvider``) and the decisions it makes;
* ``wire``: the libvirt connection — counted calls, errors mapped onto the error tree;
* ``domain``: reading, defining and powering domains;
* ``storage``: volumes — image lookup, disks, seeds, removal;
* ``backup``: image backups, standalone disk copies that outlive their server;
* ``xml``: the domain, volume and snapshot XML written and read, with our marks;
* ``seed``: the cloud-init NoCloud seed ISO, built in memory.
"""

from providers.libvirt.provider import LibvirtProvider

__all__ = ["LibvirtProvider"]
