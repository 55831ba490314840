#!/bin/bash
# carnivore (seed 000): the application on top of primal, once per deploy. Like primal.sh, system changes
# need passwordless sudo and are skipped (and said so) without it.
set -euo pipefail

say() { echo "carnivore: $*"; }
if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=""; fi
system() { if [ -n "$SUDO" ]; then $SUDO "$@"; else say "skipped (no sudo): $*"; fi; }

test -d ~/app/mailtube || { echo "carnivore: ~/app/mailtube is missing: is the source AMI a primal image?" >&2; exit 1; }

say "nginx configuration for $SERVER_NAME ($NGINX_WORKERS workers)"
rm -rf ~/app/nginx
cp -r ~/app/mailtube/nginx ~/app/nginx
sed -i "s#{NGINX_USER}#$INSTANCE_USER#g; s#{NGINX_WORKERS}#$NGINX_WORKERS#g" ~/app/nginx/nginx.conf
sed -i "s#{SERVER_NAME}#$SERVER_NAME#g; s#{STATIC_ROOT}#$HOME/app/server/public#g; s#{PORT}#$PORT#g" ~/app/nginx/site.conf
system ln -sfn "$HOME/app/nginx/nginx.conf" /etc/nginx/nginx.conf
system ln -sfn "$HOME/app/nginx/site.conf" "/etc/nginx/sites-enabled/$NAME.conf"
system rm -f /etc/nginx/sites-enabled/default

say "moving the uploaded server code"
rm -rf ~/app/server
mv /tmp/appserver ~/app/server
cp ~/app/server/deploy/env/"$NODE_ENV".json ~/app/server/.env.json

say "the app as a systemd service ($NAME)"
sed "s#{NAME}#$NAME#g; s#{USER}#$INSTANCE_USER#g; s#{COMMAND}#$HOME/app/mailtube/start.sh#g; s#{PORT}#$PORT#g; s#{NODE_ENV}#$NODE_ENV#g" \
  ~/app/mailtube/systemd/appserver.service > ~/app/"$NAME".service
system install -m 0644 "$HOME/app/$NAME.service" "/etc/systemd/system/$NAME.service"
system systemctl enable "$NAME"

env | grep -E '^(INSTANCE_USER|NGINX_WORKERS|SERVER_NAME|NODE_ENV|NAME|PORT|PACKER_BUILD_NAME|PACKER_BUILDER_TYPE)=' | sort > ~/carnivore.env
say "done"
