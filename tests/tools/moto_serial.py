"""moto's server, handling one request at a time.

`moto_server` is threaded, and moto checks conditions (S3 `If-None-Match`, DynamoDB
`ConditionExpression`) and then writes without a lock, so two concurrent writers can both
pass: a Delta commit can silently overwrite another, which real S3 never allows. Serving
requests one at a time makes every conditional write atomic, as on AWS.

Usage: python3 tests/tools/moto_serial.py PORT
"""

import os
import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

port = int(sys.argv[1])
os.environ.setdefault("MOTO_PORT", str(port))
run_simple("127.0.0.1", port, DomainDispatcherApplication(create_backend_app), threaded=False)
