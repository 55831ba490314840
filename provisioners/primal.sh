#!/bin/bash
# primal (seed 000): the OS-level base image. System changes need passwordless sudo, as the `admin` user
# of Debian's AMIs has; without it (the local lab's builder "instance" is an unprivileged user on the
# build machine) they are skipped and said so, and the user-level part runs in full.
set -euo pipefail

say() { echo "primal: $*"; }
if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=""; fi
system() { if [ -n "$SUDO" ]; then $SUDO "$@"; else say "skipped (no sudo): $*"; fi; }

say "packages: nginx and Node.js from Debian (nothing is downloaded from GitHub)"
system env DEBIAN_FRONTEND=noninteractive apt-get update -q
system env DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx nodejs npm graphicsmagick

say "tcp: no slow start after idle; forward port 80 to the app's 8080"
system sysctl -w net.ipv4.tcp_slow_start_after_idle=0
system sh -c 'printf "net.ipv4.tcp_slow_start_after_idle = 0\nnet.ipv4.ip_forward = 1\n" > /etc/sysctl.d/60-ponyfoo.conf'

say "installing the mailtube skeleton into ~/app"
mkdir -p ~/app
rm -rf ~/app/mailtube
mv /tmp/mailtube ~/app/mailtube

say "nginx starts at boot (systemd)"
system systemctl enable nginx

say "recording the build environment"
env | grep -E '^(INSTANCE_USER|NODE_ENV|PACKER_BUILD_NAME|PACKER_BUILDER_TYPE)=' | sort > ~/primal.env
say "done"
