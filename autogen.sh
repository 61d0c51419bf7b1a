#!/bin/sh
# Bootstraps the autotools build: ./autogen.sh && ./configure && make
set -e
cd "$(dirname "$0")"
mkdir -p m4
autoreconf -fi
