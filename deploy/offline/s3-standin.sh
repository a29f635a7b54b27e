#!/bin/sh
# Takes MinIO's command line (`server /data …`) and serves S3 with moto on port 9000.
exec /opt/moto/bin/python -m moto.server -H 0.0.0.0 -p 9000
