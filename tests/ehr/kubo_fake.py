"""A recorded-protocol stand-in for a Kubo node's HTTP RPC, for tests only (no Kubo binary installs here).

It answers the endpoints `KuboStore` uses the way Kubo 0.3x does: POST only (GET gets Kubo's
plain-text 405), `add` streams JSON lines {"Name", "Hash", "Size" (a string)}, errors are HTTP
500 (400 for bad arguments) with {"Message", "Code", "Type": "error"}. CIDs for `add` come from
the independent JS UnixFS importer (tests/js/unixfs_cid.mjs), never from ehr.storage. Fault
switches (`wrong_cid`, `wrong_cid_from_add`, `corrupt_cat`) cause what a real node cannot be made
to do on demand.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

JS_CID_SCRIPT = Path(__file__).resolve().parents[1] / "js" / "unixfs_cid.mjs"
FAKE_VERSION = {
    "Version": "0.32.1",
    "Commit": "",
    "Repo": "16",
    "System": "amd64/linux",
    "Golang": "go1.23.3",
}


def js_cid(data: bytes, *, cid_version: int) -> str:
    """CID of `data` per the JS importer with Kubo's `ipfs add` settings."""
    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(data)
        tmp.flush()
        out = subprocess.run(
            ["node", str(JS_CID_SCRIPT), f"--cid-version={cid_version}", tmp.name],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
    return out.stdout.strip()


@dataclass
class KuboFake:
    """In-memory Kubo RPC on 127.0.0.1 (free port); use as a context manager, read `api_url`."""

    version: str = "0.32.1"
    wrong_cid: bool = False
    wrong_cid_from_add: int | None = None  # the n-th add (0-based) and later report a wrong CID
    corrupt_cat: bool = False
    objects: dict[str, bytes] = field(default_factory=dict)
    pins: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)

    def __enter__(self) -> KuboFake:
        fake = self

        class Handler(_KuboHandler):
            node = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def api_url(self) -> str:
        host, port = self._server.server_address[:2]
        assert isinstance(host, str)  # an AF_INET server's address
        return f"http://{host}:{port}"


class _KuboHandler(BaseHTTPRequestHandler):
    node: KuboFake
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output quiet

    def do_GET(self) -> None:
        self.node.requests.append(("GET", urlsplit(self.path).path, {}))
        self._send(405, b"405 - Method Not Allowed\n", "text/plain; charset=utf-8")

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.node.requests.append(("POST", url.path, query))
        route = {
            "/api/v0/version": self._version,
            "/api/v0/add": self._add,
            "/api/v0/cat": self._cat,
            "/api/v0/pin/ls": self._pin_ls,
            "/api/v0/pin/rm": self._pin_rm,
            "/api/v0/files/stat": self._files_stat,
        }.get(url.path)
        if route is None:
            self._send(404, b"404 page not found\n", "text/plain; charset=utf-8")
            return
        route({k: v[-1] for k, v in query.items()}, body)

    # -- endpoints ------------------------------------------------------------------------------

    def _version(self, args: dict[str, str], body: bytes) -> None:
        self._json({**FAKE_VERSION, "Version": self.node.version})

    def _add(self, args: dict[str, str], body: bytes) -> None:
        version = int(args.get("cid-version", "0"))
        raw_leaves = args.get("raw-leaves", "true" if version == 1 else "false") == "true"
        if args.get("chunker", "size-262144") != "size-262144" or raw_leaves != (version == 1):
            self._error(400, "fake supports only Kubo's default add settings", code=1)
            return
        name, data = _multipart_file(self.headers["Content-Type"], body)
        cid = js_cid(data, cid_version=version)
        self.node.objects[cid] = data
        if args.get("pin", "true") == "true":
            self.node.pins.add(cid)
        adds_before = sum(1 for _m, path, _q in self.node.requests if path == "/api/v0/add") - 1
        from_add = self.node.wrong_cid_from_add
        wrong = self.node.wrong_cid or (from_add is not None and adds_before >= from_add)
        reported = js_cid(data + b"!", cid_version=version) if wrong else cid
        line = json.dumps({"Name": name, "Hash": reported, "Size": str(len(data) + 14)}) + "\n"
        self._send(200, line.encode(), "application/json", extra={"X-Chunked-Output": "1"})

    def _cat(self, args: dict[str, str], body: bytes) -> None:
        cid = args.get("arg")
        if cid is None:
            self._error(400, 'argument "ipfs-path" is required', code=1)
        elif cid not in self.node.objects:
            self._error(500, f"block was not found locally (offline): ipld: could not find {cid}")
        else:
            data = self.node.objects[cid]
            if self.node.corrupt_cat and data:
                data = bytes([data[0] ^ 1]) + data[1:]
            self._send(200, data, "text/plain", extra={"X-Stream-Output": "1"})

    def _pin_ls(self, args: dict[str, str], body: bytes) -> None:
        cid = args.get("arg")
        if cid is None:
            self._json({"Keys": {c: {"Type": "recursive", "Name": ""} for c in sorted(self.node.pins)}})
        elif cid in self.node.pins:
            self._json({"Keys": {cid: {"Type": "recursive", "Name": ""}}})
        else:
            self._error(500, f"path '{cid}' is not pinned")

    def _pin_rm(self, args: dict[str, str], body: bytes) -> None:
        cid = args.get("arg", "")
        if cid not in self.node.pins:
            self._error(500, "not pinned or pinned indirectly")
        else:
            self.node.pins.discard(cid)
            self._json({"Pins": [cid]})

    def _files_stat(self, args: dict[str, str], body: bytes) -> None:
        cid = args.get("arg", "").removeprefix("/ipfs/")
        if cid not in self.node.objects:
            self._error(500, f"block was not found locally (offline): ipld: could not find {cid}")
        else:
            size = len(self.node.objects[cid])
            self._json({"Hash": cid, "Size": size, "CumulativeSize": size + 14, "Blocks": 0, "Type": "file"})

    # -- replies --------------------------------------------------------------------------------

    def _json(self, value: object) -> None:
        self._send(200, (json.dumps(value) + "\n").encode(), "application/json")

    def _error(self, status: int, message: str, *, code: int = 0) -> None:
        body = json.dumps({"Message": message, "Code": code, "Type": "error"}) + "\n"
        self._send(status, body.encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


def _multipart_file(content_type: str, body: bytes) -> tuple[str, bytes]:
    """The single file part of a multipart/form-data body: (filename, bytes)."""
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    for part in body.split(b"--" + boundary)[1:-1]:
        head, _, content = part[2:].partition(b"\r\n\r\n")
        if b"filename=" in head:
            name = head.split(b'filename="', 1)[1].split(b'"', 1)[0].decode()
            return name, content[:-2]  # drop the CRLF before the next boundary
    raise ValueError("no file part")
