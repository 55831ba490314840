#!/bin/sh
# Started by systemd (see systemd/appserver.service): the app server in production mode.
cd "$HOME/app/server" && exec node cluster.js
