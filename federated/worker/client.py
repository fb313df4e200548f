"""The hospital worker's HTTP client for the API's worker endpoints (/api/training/worker/...).

Every request but the config read is authorised by the hospital key: release, moments and refusals carry
an EIP-191 `auth` over their body (federated.worker_auth), an update carries its own EIP-712 signature.
Failures come in two kinds the task treats differently: `ApiUnavailable` (no answer, 5xx, 429) is worth
a retry; `ApiRefused` (any other 4xx) is the server's final word on this request. The server's error
shape is {"error": code, "detail": message, "field": name or null}.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from eth_account.signers.local import LocalAccount

from federated import worker_auth

log = logging.getLogger(__name__)

WORKER_PATH = "/api/training/worker/"
# Connect / read timeouts: a release of many records takes the server a while to seal.
TIMEOUT_S = (5.0, 120.0)


class ApiUnavailable(Exception):
    """The API did not answer usefully (connection refused, timeout, 5xx, 429): try again later."""


class ApiRefused(Exception):
    """The API refused the request (a 4xx): final for this request."""

    def __init__(self, *, status: int, code: str, detail: str, field: str | None = None) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field


@dataclass(frozen=True)
class HospitalInfo:
    slug: str
    hospital_id: str
    account_address: str
    active: bool


@dataclass(frozen=True)
class WorkerConfig:
    """What the API tells a worker at start: where the chain and the registry are, the CID version, and
    (when asked for one) the hospital as the server knows it."""

    chain_id: int
    training_registry: str | None  # None: not deployed on the API's chain
    cid_version: int
    hospital: HospitalInfo | None


@dataclass(frozen=True)
class ReleaseAnswer:
    record_count: int
    patient_count: int
    pinned_block: int
    sealed_bytes: bytes


@dataclass(frozen=True)
class UpdateAnswer:
    """`outcome`: "accepted" (new), "duplicate" (the same update was already in) or "conflict" (another
    update of this hospital already holds the round: 409 update_conflict). All three mean: done."""

    outcome: str
    body: dict[str, Any]


class WorkerApi:
    """The API at `base_url` as one hospital's worker sees it."""

    def __init__(
        self,
        base_url: str,
        *,
        account: LocalAccount,
        hospital_id: str,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.account = account
        self.hospital_id = hospital_id.lower()
        self._session = session or requests.Session()

    # ---------------------------------------------------------------- reads

    def config(self, *, hospital_slug: str | None = None) -> WorkerConfig:
        params = {"hospital": hospital_slug} if hospital_slug else None
        body = self._call("GET", "config", params=params)
        try:
            hospital, registry = body.get("hospital"), body["training_registry"]
            return WorkerConfig(
                chain_id=int(body["chain_id"]),
                training_registry=None if registry is None else str(registry),
                cid_version=int(body["cid_version"]),
                hospital=None
                if hospital is None
                else HospitalInfo(
                    slug=str(hospital["slug"]),
                    hospital_id=str(hospital["hospital_id"]),
                    account_address=str(hospital["account_address"]),
                    active=bool(hospital["active"]),
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ApiUnavailable(f"the worker config answer is malformed ({exc!r})") from exc

    # ---------------------------------------------------------------- signed requests

    def release(self, *, job_id: str, round_number: int, known_block: int | None = None) -> ReleaseAnswer:
        """The round's release: full, or a delta from `known_block` (the job's release this worker holds)."""
        members = {} if known_block is None else {"known_block": known_block}
        body = self._signed("release", job_id=job_id, round_number=round_number, members=members)
        answer = self._call("POST", "release", json=body)
        try:
            return ReleaseAnswer(
                record_count=int(answer["record_count"]),
                patient_count=int(answer["patient_count"]),
                pinned_block=int(answer["pinned_block"]),
                sealed_bytes=base64.b64decode(answer["sealed"], validate=True),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise ApiUnavailable(f"the release answer is malformed ({type(exc).__name__})") from exc

    def moments(self, *, job_id: str, round_number: int, moments: Mapping[str, Any]) -> dict[str, Any]:
        body = self._signed(
            "moments", job_id=job_id, round_number=round_number, members={"moments": dict(moments)}
        )
        return self._call("POST", "moments", json=body)

    def refuse(self, *, job_id: str, round_number: int, reason: str, detail: str) -> dict[str, Any]:
        body = self._signed(
            "refusal", job_id=job_id, round_number=round_number, members={"reason": reason, "detail": detail}
        )
        return self._call("POST", "refusals", json=body)

    def submit_update(self, payload: Mapping[str, Any]) -> UpdateAnswer:
        """POST the signed update (see local_round for the payload); 201 / 200 duplicate / 409 conflict."""
        try:
            answer = self._call("POST", "updates", json=dict(payload))
        except ApiRefused as refused:
            if refused.status == 409 and refused.code == "update_conflict":
                return UpdateAnswer(
                    outcome="conflict", body={"error": refused.code, "detail": refused.detail}
                )
            raise
        return UpdateAnswer(outcome="duplicate" if answer.get("duplicate") else "accepted", body=answer)

    # ---------------------------------------------------------------- plumbing

    def _signed(
        self, action: str, *, job_id: str, round_number: int, members: Mapping[str, Any]
    ) -> dict[str, Any]:
        body = {"job_id": job_id, "round": round_number, "hospital_id": self.hospital_id, **members}
        auth = worker_auth.sign_request(
            bytes(self.account.key),
            action=action,
            job_id=job_id,
            round_number=round_number,
            hospital_id=self.hospital_id,
            body=body,
        )
        return body | {"auth": auth}

    def _call(self, method: str, endpoint: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.base_url}{WORKER_PATH}{endpoint}"
        try:
            response = self._session.request(method, url, timeout=TIMEOUT_S, **kwargs)
        except requests.RequestException as exc:
            raise ApiUnavailable(
                f"the API at {self.base_url} does not answer ({type(exc).__name__})"
            ) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ApiUnavailable(f"{method} {endpoint}: {response.status_code} {_error_of(response)[1]}")
        if response.status_code >= 400:
            code, detail, field = _error_of(response)
            raise ApiRefused(status=response.status_code, code=code, detail=detail, field=field)
        try:
            answer = response.json()
        except ValueError as exc:
            raise ApiUnavailable(f"{method} {endpoint}: the answer is not JSON") from exc
        if not isinstance(answer, dict):
            raise ApiUnavailable(f"{method} {endpoint}: the answer is not a JSON object")
        return answer


def _error_of(response: requests.Response) -> tuple[str, str, str | None]:
    """(code, detail, field) of an error answer, whatever its body."""
    try:
        body = response.json()
    except ValueError:
        return "http_error", response.reason or str(response.status_code), None
    if not isinstance(body, dict):
        return "http_error", str(body)[:200], None
    return str(body.get("error") or "http_error"), str(body.get("detail") or ""), body.get("field")
