#!/bin/sh
# `mc ready local`, MinIO's health command, for the stand-in: does the server answer?
exec /opt/moto/bin/python -c \
  "import urllib.request as u; u.urlopen('http://127.0.0.1:9000/moto-api/', timeout=4)"
