"""A path-rewriting HTTP gateway that gives Apicurio Registry a Confluent-shaped base URL.

Why it exists: Confluent clients (``SchemaRegistryClient``, the Avro serializers, Spark jobs reading the
registry) call ``{SCHEMA_REGISTRY_URL}/subjects/...``, ``/schemas/ids/...``, ``/config`` at the root of
the URL, while Apicurio serves that Confluent-compatible API under ``/apis/ccompat/v7``. The DAG contract
fixes ``SCHEMA_REGISTRY_URL=http://localhost:8081`` and, in production, points it straight at a
Confluent Schema Registry; so locally something must answer the same paths at the URL's root. This
process does only that: it listens on the registry URL's port, prefixes every request path and forwards
method, headers, body and status unchanged. In production nothing of this runs.

Run as ``python -m shoplake.stack.registry_gateway --listen HOST:PORT --upstream HOST:PORT``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CCOMPAT_PREFIX = "/apis/ccompat/v7"
UPSTREAM_TIMEOUT = 60.0

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
"""Headers that describe one connection rather than the message; each hop sets its own."""


def upstream_path(path: str, prefix: str = CCOMPAT_PREFIX) -> str:
    """The upstream request target for a client's ``path`` (query string kept)."""
    if not path.startswith("/"):
        path = "/" + path
    return path if path.startswith(prefix + "/") or path == prefix else prefix + path


def forwardable(headers: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """``headers`` without the hop-by-hop ones."""
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]


def _handler(upstream_host: str, upstream_port: int, prefix: str) -> type[BaseHTTPRequestHandler]:
    class Gateway(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self._reply(411, [("Content-Type", "application/json")], b'{"message": "send Content-Length"}')
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            conn = http.client.HTTPConnection(upstream_host, upstream_port, timeout=UPSTREAM_TIMEOUT)
            try:
                conn.putrequest(self.command, upstream_path(self.path, prefix), skip_accept_encoding=True)
                for key, value in forwardable(list(self.headers.items())):
                    conn.putheader(key, value)
                if body is not None:
                    conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                resp = conn.getresponse()
                data = resp.read()
                self._reply(resp.status, forwardable(resp.getheaders()), data)
            except OSError as exc:
                error = {"error_code": 50201, "message": f"registry backend unreachable: {exc}"}
                self._reply(502, [("Content-Type", "application/json")], json.dumps(error).encode())
            finally:
                conn.close()

        def _reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        # BaseHTTPRequestHandler dispatches on these names; every method is forwarded the same way.
        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _forward  # noqa: N815

    return Gateway


def _host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--listen", type=_host_port, required=True, metavar="HOST:PORT")
    parser.add_argument("--upstream", type=_host_port, required=True, metavar="HOST:PORT")
    parser.add_argument("--prefix", default=CCOMPAT_PREFIX)
    args = parser.parse_args(argv)
    upstream_host, upstream_port = args.upstream
    server = ThreadingHTTPServer(args.listen, _handler(upstream_host, upstream_port, args.prefix.rstrip("/")))
    server.daemon_threads = True
    print(f"registry gateway: {args.listen[0]}:{args.listen[1]} -> {args.upstream} + {args.prefix}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
