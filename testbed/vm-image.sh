#!/usr/bin/env bash
# The dev stack's VM image for the tests (issue 15): what `lab.baseImage` names on an operator's
# machine (a distribution's cloud image), built here from Debian packages because nothing can be
# downloaded. A Debian root filesystem (mmdebstrap, the host's suite and apt sources) with
# systemd, cloud-init (NoCloud), openssh-server, ifupdown (cloud-init's renderer on Debian) and
# the cloud kernel, as one ext4 filesystem in a qcow2 (no partition table, no boot loader: the
# VMs boot its kernel and initrd directly, which libvirt's <kernel>/<initrd> supports).
# Stand-in, named: the packages host preparation installs (keepalived, conntrack, ebtables,
# socat, ethtool, curl, iputils-ping) are in the image already, because the VMs reach no mirror;
# the program's install path runs against the rehearse suite's apt repository instead.
# Produces, in a cache outside the repo:
#   base.qcow2   the root filesystem (resized to the volume by cloud-init at first boot)
#   vmlinuz, initrd.img   the image's own kernel and initramfs, for direct kernel boot
#   versions.txt the suite, kernel, systemd, cloud-init and openssh versions inside
# Prints the output directory.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cache=${K8SBM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/k8s-baremetal}
out="$cache/lab-vm-image"
build_name=vm-image
work="$cache/build-lab-vm"
# shellcheck source=testbed/image-build.sh
. "$here/testbed/image-build.sh"

recipe=$(cat "$0" | sha256sum | cut -c1-16)
done_() { [ "$(cat "$out/.complete" 2>/dev/null)" = "$recipe" ]; }
if done_; then echo "$out"; exit 0; fi
mkdir -p "$cache"
exec 9>"$cache/.vm-image.lock"
flock 9
if done_; then echo "$out"; exit 0; fi
for c in mmdebstrap mkfs.ext4 qemu-img; do
  command -v $c >/dev/null || { log "needs $c (Debian: mmdebstrap e2fsprogs qemu-utils; see .ci/run)"; exit 1; }
done
rm -rf "$out" "$work"; mkdir -p "$out" "$work"
build_log "$cache/lab-vm-image.log" vm-image

. /etc/os-release
suite=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
sources=()
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
  [ -s "$f" ] && grep -qvE '^\s*(#|$)' "$f" && sources+=("$f")
done
debs="$cache/lab-vm-debs"
mkdir -p "$debs"

# first boot as a cloud image's: cloud-init from the NoCloud seed only (no network datasources
# to time out on), root's login by key (the user-data says so), the serial console
cat >"$work/setup.sh" <<'EOF'
set -e
printf 'datasource_list: [ NoCloud, None ]\n' >/etc/cloud/cloud.cfg.d/90-k8sbm-datasources.cfg
# no locales package in a minimal image: cloud-init's locale module would fail on update-locale
printf 'locale: false\n' >/etc/cloud/cloud.cfg.d/90-k8sbm-locale.cfg
printf '/dev/vda / ext4 rw,discard,errors=remount-ro 0 1\n' >/etc/fstab
: >/etc/machine-id; rm -f /var/lib/dbus/machine-id
rm -f /etc/ssh/ssh_host_*   # each VM gets its host key from the program (cloud-init ssh_keys)
passwd -l root
systemctl enable systemd-timesyncd 2>/dev/null || true
EOF
step "root filesystem (Debian $suite: systemd, cloud-init, openssh-server, linux-image-cloud-amd64)"
root="$work/root"
mmdebstrap --variant=apt \
  --include=systemd-sysv,udev,dbus,cloud-init,openssh-server,ifupdown,isc-dhcp-client,iproute2,kmod,procps,linux-image-cloud-amd64,initramfs-tools,e2fsprogs,keepalived,conntrack,ebtables,socat,ethtool,curl,iputils-ping,ca-certificates,gnupg,apt-transport-https \
  --dpkgopt=force-unsafe-io \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives' \
  --setup-hook="sync-in $debs /var/cache/apt/archives/" \
  --customize-hook="copy-in $work/setup.sh /tmp" \
  --customize-hook='chroot "$1" sh /tmp/setup.sh && rm "$1/tmp/setup.sh"' \
  --customize-hook="sync-out /var/cache/apt/archives $debs" \
  --customize-hook='rm -rf "$1"/var/cache/apt/archives/*.deb "$1"/var/lib/apt/lists/*' \
  "$suite" "$root" "${sources[@]}" 3>&- 4>&- 9>&-   # apt's hooks run `cat >&N` in dash: N must stay below 10

step "kernel and initramfs for direct boot"
kernel=$(cd "$root/boot" && ls vmlinuz-* | sort -V | tail -1)
cp "$root/boot/$kernel" "$out/vmlinuz"
cp "$root/boot/initrd.img-${kernel#vmlinuz-}" "$out/initrd.img"
chmod 0644 "$out/vmlinuz" "$out/initrd.img"
ver() { chroot "$root" dpkg-query -W -f='${Version}' "$1"; }
{
  echo "debian $suite $(cat "$root/etc/debian_version")"
  echo "kernel ${kernel#vmlinuz-}"
  for p in systemd cloud-init openssh-server keepalived; do echo "$p $(ver $p)"; done
} >"$out/versions.txt"

step "ext4 filesystem and qcow2"
size=$(($(du -sm "$root" | cut -f1) * 13 / 10 + 256))   # MiB: the files plus room for first boot
mkfs.ext4 -q -L root -d "$root" -E root_owner=0:0 "$work/root.raw" "${size}M"
qemu-img convert -q -f raw -O qcow2 "$work/root.raw" "$out/base.qcow2"
rm -rf "$work"
echo "$recipe" >"$out/.complete"
log "done: $out ($(cat "$out/versions.txt" | tr '\n' ';'))"
echo "$out" >&4
