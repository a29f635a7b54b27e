"""The schemathesis checks the gateway's OpenAPI tests run: no 5xx, and every answer as the
document says (status, media type, body and headers), and nothing the schema calls invalid
taken. Positive data acceptance is left out: some of the server's rules (an address's length,
a table's rows of equal length) cannot be written in JSON Schema (services/gateway/apidoc.py).
"""

from __future__ import annotations

from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
