"""The HTTP side of `manage.py bench_api`: clients (threads, each with its own keep-alive session and API
token) drive the running server for a bounded time, and every request's operation, status and latency is
kept. Nothing here touches the database: it is a client, like any other.

Personas and their mix of operations (weights in each loop):
- doctor: open a record a consent of theirs covers (`open`), list the records they may see
  (`list_records`, which logs a listing entry per patient), ask whether a consent allows them (`check`);
- patient: open one of their own records (`open`), read their chart (`chart`) and access log
  (`access_log`);
- granter (one client): a patient with a wallet granting a doctor TREATMENT on one category of her chart:
  the EIP-712 payload from the server (`grant_typed_data`), signed here as her wallet would, submitted
  (`grant`, answered 202 and mined by the relayer meanwhile), then a short pause. A wallet, not her
  password: unlocking a managed key is a password hash by design (about half a second of CPU), which
  would measure the hash, not the API.
"""

from __future__ import annotations

import random
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from eth_account import Account
from eth_account.messages import encode_typed_data

# status codes an operation answers when all is well; anything else is an error
EXPECTED = {"grant": {202}}
GRANT_PAUSE_S = 1.0


@dataclass(frozen=True)
class Persona:
    kind: str  # "doctor" | "patient" | "granter"
    token: str
    address: str
    record_ids: tuple[str, ...]  # doctor: records a consent covers; patient: her own
    patients: tuple[str, ...] = ()  # doctor: addresses of consenting patients
    grantees: tuple[str, ...] = ()  # granter: doctors she grants to, in turn
    grant_scopes: tuple[str, ...] = ()  # granter: then the next scope (no grant waits on its own last)
    wallet_key: bytes = b""  # granter: her key, as her wallet holds it


@dataclass(frozen=True)
class Sample:
    op: str
    status: int  # 0: no answer (connection error, timeout)
    started: float
    seconds: float


@dataclass
class OpStats:
    count: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        """Nearest-rank percentile of the latencies (0 without samples)."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        rank = max(1, round(fraction * len(ordered)))
        return round(ordered[min(rank, len(ordered)) - 1], 1)


def split_clients(clients: int) -> tuple[int, int, int]:
    """(doctors, patients, granters) among `clients`: one granter from four clients on, then 2:1."""
    granters = 1 if clients >= 4 else 0
    rest = clients - granters
    doctors = max(1, round(rest * 2 / 3)) if rest else 0
    return doctors, rest - doctors, granters


def _doctor_step(persona: Persona, rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    roll = rng.random()
    if roll < 0.7:
        return "open", f"/api/records/{rng.choice(persona.record_ids)}", {}
    if roll < 0.85:
        return "list_records", "/api/records", {"params": {"limit": 20}}
    params = {
        "patient": rng.choice(persona.patients),
        "grantee": persona.address,
        "purpose": "TREATMENT",
        "category": "laboratory",
    }
    return "check", "/api/consents/check", {"params": params}


def _patient_step(persona: Persona, rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    roll = rng.random()
    if roll < 0.4:
        return "open", f"/api/records/{rng.choice(persona.record_ids)}", {}
    if roll < 0.7:
        return "chart", "/api/records", {"params": {"limit": 20}}
    return "access_log", "/api/patients/me/access-log", {"params": {"limit": 20}}


def _client(
    persona: Persona, *, url: str, deadline: float, seed: int, samples: list[Sample], stop: threading.Event
) -> None:
    rng = random.Random(seed)  # a load mix, not a secret
    session = requests.Session()
    session.headers["Authorization"] = f"Token {persona.token}"
    turn = 0
    while time.monotonic() < deadline and not stop.is_set():
        if persona.kind == "granter":
            _grant(session, url, persona, turn, samples)
            turn += 1
            stop.wait(GRANT_PAUSE_S)
            continue
        step = _doctor_step if persona.kind == "doctor" else _patient_step
        op, path, kwargs = step(persona, rng)
        _timed(samples, op, session, "GET", url + path, **kwargs)
    session.close()


def _timed(
    samples: list[Sample], op: str, session: requests.Session, method: str, url: str, **kwargs: Any
) -> requests.Response | None:
    started = time.monotonic()
    try:
        response: requests.Response | None = session.request(method, url, timeout=30, **kwargs)
    except requests.RequestException:
        response = None
    status = response.status_code if response is not None else 0
    samples.append(Sample(op, status, started, time.monotonic() - started))
    return response


def _grant(session: requests.Session, url: str, persona: Persona, turn: int, samples: list[Sample]) -> None:
    grantee = persona.grantees[turn % len(persona.grantees)]
    scope = persona.grant_scopes[turn // len(persona.grantees) % len(persona.grant_scopes)]
    terms = {"action": "grant", "grantee": grantee, "scope": scope, "purpose": "TREATMENT"}
    prepared = _timed(
        samples, "grant_typed_data", session, "POST", f"{url}/api/consents/typed-data", json=terms
    )
    if prepared is None or prepared.status_code != 200:
        return
    payload = prepared.json()
    signature = Account.sign_message(encode_typed_data(full_message=payload), persona.wallet_key).signature
    body = {"typed_data": payload, "signature": "0x" + signature.hex().removeprefix("0x")}
    _timed(samples, "grant", session, "POST", f"{url}/api/consents", json=body)


def run_load(
    url: str, personas: list[Persona], *, seconds: float, warmup_s: float, say: Callable[[str], None]
) -> tuple[dict[str, OpStats], list[Sample], float]:
    """Every persona a client thread, for `warmup_s + seconds`; the stats cover the last `seconds` only.
    Returns (stats by operation, every sample, the measured window in seconds)."""
    samples: list[Sample] = []  # list.append is atomic: threads share it
    stop = threading.Event()
    begin = time.monotonic()
    deadline = begin + warmup_s + seconds
    threads = [
        threading.Thread(
            target=_client,
            kwargs={
                "persona": p,
                "url": url,
                "deadline": deadline,
                "seed": i,
                "samples": samples,
                "stop": stop,
            },
            daemon=True,
        )
        for i, p in enumerate(personas)
    ]
    for thread in threads:
        thread.start()
    say(f"load: {len(threads)} clients for {warmup_s:g} s warm-up + {seconds:g} s")
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + 60)
    stop.set()
    measured_from = begin + warmup_s
    window = max(1e-9, min(time.monotonic(), deadline) - measured_from)
    stats: dict[str, OpStats] = defaultdict(OpStats)
    for sample in samples:
        if sample.started < measured_from:
            continue
        stat = stats[sample.op]
        stat.count += 1
        stat.latencies_ms.append(sample.seconds * 1000)
        if sample.status not in EXPECTED.get(sample.op, {200}):
            stat.errors += 1
    return dict(stats), samples, window
