"""What the hospital worker reads from the chain: which plan its hospital approved for a job.

Read-only eth_calls through contracts.client's node connection (ETH_RPC_URL, or the dev chain), with the
TrainingRegistry ABI from its build artifact and the address the API names at start. Nothing here looks
at the database: `contracts.client.chain_id()` and `contracts.client.contract()` would (their fallbacks
read Deployment rows), so the chain id is asked of the node and the contract is built from the artifact.
"""

from __future__ import annotations

from eth_utils import to_checksum_address
from web3.contract import Contract
from web3.exceptions import Web3Exception

from contracts import client
from contracts.artifacts import load_artifact


class ChainDown(Exception):
    """The node did not answer or failed the call: try again later."""


class TrainingRegistryReader:
    """TrainingRegistry at `address` on the node contracts.client connects to."""

    def __init__(self, address: str) -> None:
        self.address = to_checksum_address(address)
        self._contract: Contract | None = None

    def node_chain_id(self) -> int:
        """The chain id the node reports (asked every time: a worker checks it at start)."""
        return int(self._rpc("eth_chainId"), 16)

    def approved_plan_of(self, *, hospital_id: str, job_id: str) -> str:
        """ "0x" + hex of the plan hash the hospital last approved for the job (zeros: none)."""
        function = self._registry().functions.approvedPlanOf(_bytes32(hospital_id), _bytes32(job_id))
        try:
            with client.node_errors():
                value = function.call(block_identifier="latest")
        except (client.ChainUnavailable, Web3Exception, ValueError) as exc:
            raise ChainDown(f"approvedPlanOf failed: {exc}") from exc
        return "0x" + bytes(value).hex()

    def _registry(self) -> Contract:
        if self._contract is None:
            self._contract = client.get_web3().eth.contract(
                address=self.address, abi=load_artifact("TrainingRegistry").abi
            )
        return self._contract

    def _rpc(self, method: str) -> str:
        w3 = self._registry().w3
        try:
            with client.node_errors():
                response = w3.provider.make_request(method, [])  # type: ignore[arg-type]
        except client.ChainUnavailable as exc:
            raise ChainDown(str(exc)) from exc
        if "error" in response:
            raise ChainDown(f"{method}: {response['error']}")
        return str(response["result"])


def _bytes32(value: str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError(f"{value!r} is not 32 bytes of hex")
    return raw
