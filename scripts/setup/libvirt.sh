#!/usr/bin/env bash
# Set up a real libvirtd with the QEMU driver for the libvirt provider's end-to-end tests.
#
#   sudo bash scripts/setup/libvirt.sh
#
# For a fresh Debian 12 machine (or container) run as root, with only the Debian mirrors and
# PyPI reachable. Idempotent: packages already installed, users already made, settings
# already written and a daemon already answering are all left as they are. It installs the
# packages, makes the users and groups the QEMU driver expects, writes container-friendly
# qemu.conf settings, starts libvirtd in the background and waits until
# `virsh -c qemu:///system version` answers. It creates nothing project-specific: the tests
# make their own storage pools under temporary directories.
#
# Exit status: 0 when qemu:///system answers, non-zero (with the reason on stderr) when this
# machine cannot have a libvirtd; the real-libvirtd tests then skip, naming the reason.
# Domains use type='qemu' (software emulation), so /dev/kvm is not needed.
set -uo pipefail

PACKAGES=(
  libvirt-dev pkg-config gcc              # to build libvirt-python
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
  qemu-system-x86 qemu-utils
)
URI="qemu:///system"
QEMU_CONF=/etc/libvirt/qemu.conf
MARK="# --- gitops-reconciler test settings (scripts/setup/libvirt.sh) ---"
WAIT_SECONDS=${LIBVIRT_SETUP_WAIT:-30}

fail() {
  echo "setup/libvirt: $*" >&2
  echo "setup/libvirt: the real-libvirtd tests will be skipped" >&2
  exit 1
}
say() { echo "setup/libvirt: $*"; }

answers() { virsh -c "$URI" version >/dev/null 2>&1; }

[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs packages and starts libvirtd)"
command -v apt-get >/dev/null 2>&1 || fail "apt-get not found: this script supports Debian/Ubuntu only"

# --- packages -----------------------------------------------------------------------------
python_for_build=${PYTHON:-python3}
if command -v "$python_for_build" >/dev/null 2>&1; then
  include=$("$python_for_build" -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)
  if [ -n "$include" ] && [ ! -f "$include/Python.h" ]; then
    PACKAGES+=(python3-dev)  # headers to compile libvirt-python's C extension
  fi
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  # Update the package lists once, only when some package has no install candidate.
  for pkg in "${missing[@]}"; do
    if ! apt-cache policy "$pkg" 2>/dev/null | grep -q "Candidate: [0-9]"; then
      say "updating the package lists"
      apt-get update -qq || fail "apt-get update failed (is a Debian mirror reachable?)"
      break
    fi
  done
  install() {
    apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${missing[@]}" >/dev/null
  }
  say "installing ${missing[*]}"
  if ! install; then  # stale package lists point at versions the mirror no longer has
    say "install failed; updating the package lists and trying once more"
    apt-get update -qq || fail "apt-get update failed (is a Debian mirror reachable?)"
    install || fail "apt-get install ${missing[*]} failed"
  fi
fi
command -v libvirtd >/dev/null 2>&1 || fail "libvirtd is not installed"
command -v virsh >/dev/null 2>&1 || fail "virsh is not installed"

# --- users and groups the QEMU driver looks up --------------------------------------------
for group in kvm libvirt libvirt-qemu; do
  getent group "$group" >/dev/null || groupadd --system "$group" || fail "cannot create group $group"
done
if ! getent passwd libvirt-qemu >/dev/null; then
  useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin \
    --gid libvirt-qemu --groups kvm libvirt-qemu || fail "cannot create user libvirt-qemu"
fi

# --- qemu.conf: run QEMU as root, no relabelling, no cgroups, logs to plain files ---------
mkdir -p /etc/libvirt
touch "$QEMU_CONF"
if ! grep -qF "$MARK" "$QEMU_CONF"; then
  sed -i -E '/^[[:space:]]*(user|group|dynamic_ownership|security_driver|cgroup_controllers|stdio_handler)[[:space:]]*=/d' \
    "$QEMU_CONF"
  cat >>"$QEMU_CONF" <<EOF
$MARK
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
EOF
  say "wrote test settings to $QEMU_CONF"
fi
mkdir -p /var/lib/libvirt/images /var/log/libvirt/qemu /run/libvirt

# --- the daemon ---------------------------------------------------------------------------
if answers; then
  say "libvirtd already answers on $URI"
else
  say "starting libvirtd"
  # Complaints about D-Bus, dnsmasq, firewalld and cgroups are harmless here.
  libvirtd -d >/dev/null 2>&1 || fail "libvirtd -d failed to start (see /var/log/libvirt or run libvirtd in the foreground)"
  for _ in $(seq 1 "$WAIT_SECONDS"); do
    answers && break
    sleep 1
  done
  answers || fail "libvirtd started but $URI did not answer within ${WAIT_SECONDS}s"
fi
virsh -c "$URI" version | sed '/^$/d; s/^/setup\/libvirt: /'
say "ready: $URI"
