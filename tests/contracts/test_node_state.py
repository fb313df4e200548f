"""A dev chain restarted from its state file keeps its genesis block (defect B of the README's "Under load"),
and a state file anvil left half-written is not the end of the chain.

anvil 1.7.1 builds a genesis block at each start and dumps it beside the loaded one; loading a file with
several blocks numbered 0, it takes the one written last. These tests write that order on purpose (the dump
writes its blocks in hash-map order, so a plain restart hits it only now and then), show that anvil alone
then comes back with another genesis, and that `start_anvil` keeps the chain's own or refuses to start.
anvil also rewrites its periodic dump in place: a crash mid-write is made here by cutting the file in half
(a SIGKILL cannot be timed into that window reliably)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from web3 import Web3
from web3.types import RPCEndpoint

from contracts.node import (
    AnvilError,
    anvil_binary,
    free_port,
    last_start_copy,
    prepare_state_file,
    start_anvil,
    wait_for_rpc,
)


def _geneses(state_path: Path) -> list[dict]:
    blocks = json.loads(state_path.read_text())["blocks"]
    return [block for block in blocks if int(block["header"]["number"], 16) == 0]


def _rewrite_geneses(state_path: Path, geneses: list[dict]) -> None:
    """The file with `geneses` as its blocks numbered 0, in that order, written after every other block."""
    state = json.loads(state_path.read_text())
    state["blocks"] = [b for b in state["blocks"] if int(b["header"]["number"], 16) != 0] + geneses
    state_path.write_text(json.dumps(state))


def _timestamp(block: dict) -> int:
    return int(block["header"]["timestamp"], 16)


def _chain_with_two_geneses(tmp_path: Path) -> tuple[Path, str]:
    """A state file written by two runs (the second started from the first's dump): its chain's genesis
    hash, and the file with the second run's genesis written last."""
    state_path = tmp_path / "chain.json"
    node = start_anvil(state_path=state_path)
    try:
        web3 = Web3(Web3.HTTPProvider(node.rpc_url))
        web3.provider.make_request(RPCEndpoint("evm_mine"), [])
        genesis = web3.eth.get_block(0)["hash"].to_0x_hex()
    finally:
        node.stop()
    time.sleep(1.1)  # block timestamps are whole seconds: the next start's genesis gets another one
    start_anvil(state_path=state_path).stop()
    geneses = sorted(_geneses(state_path), key=_timestamp)
    assert len(geneses) == 2  # anvil dumped the genesis it built at the second start beside the chain's
    _rewrite_geneses(state_path, geneses)  # the later one last: the one anvil would take
    return state_path, genesis


def _plain_anvil_genesis(state_path: Path) -> tuple[str, str]:
    """anvil started from the file with no help from us: (its block 0's hash, its block 1's parent)."""
    port = free_port()
    process = subprocess.Popen(
        [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(port), "--load-state", str(state_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_rpc(f"http://127.0.0.1:{port}")
        web3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        return web3.eth.get_block(0)["hash"].to_0x_hex(), web3.eth.get_block(1)["parentHash"].to_0x_hex()
    finally:
        process.kill()
        process.wait()


def test_a_restart_from_a_state_file_with_two_geneses_keeps_the_chains_own(tmp_path: Path) -> None:
    state_path, genesis = _chain_with_two_geneses(tmp_path)
    unhelped = tmp_path / "copy.json"
    shutil.copy(state_path, unhelped)
    other, parent = _plain_anvil_genesis(unhelped)
    assert other != genesis and parent == genesis  # anvil's own behaviour: the defect this works around

    node = start_anvil(state_path=state_path)
    try:
        web3 = Web3(Web3.HTTPProvider(node.rpc_url))
        assert web3.eth.get_block(0)["hash"].to_0x_hex() == genesis
        assert web3.eth.get_block(1)["parentHash"].to_0x_hex() == genesis
    finally:
        node.stop()


def test_prepare_keeps_the_earliest_genesis_and_leaves_the_rest_of_the_file(tmp_path: Path) -> None:
    state_path, _ = _chain_with_two_geneses(tmp_path)
    before = json.loads(state_path.read_text())
    earliest = min(_geneses(state_path), key=_timestamp)

    assert prepare_state_file(state_path).geneses_removed == 1
    after = json.loads(state_path.read_text())
    assert _geneses(state_path) == [earliest]
    assert len(after["blocks"]) == len(before["blocks"]) - 1
    del after["blocks"], before["blocks"]
    assert after == before  # the accounts, the head, the transactions: as anvil wrote them
    assert last_start_copy(state_path).read_bytes() == state_path.read_bytes()
    assert prepare_state_file(state_path).geneses_removed == 0  # one genesis: nothing to remove


@pytest.mark.parametrize("content", [b"", b"{not json", b'{"blocks": "none"}', b"[]"])
def test_prepare_leaves_a_file_it_does_not_know_to_anvil(tmp_path: Path, content: bytes) -> None:
    state_path = tmp_path / "chain.json"
    state_path.write_bytes(content)
    assert prepare_state_file(state_path).set_aside is None
    assert state_path.read_bytes() == content
    assert not last_start_copy(state_path).exists()  # no copy of what is not anvil's state


def test_a_state_file_left_half_written_is_set_aside_and_the_last_start_copy_taken(tmp_path: Path) -> None:
    state_path, genesis = _chain_with_two_geneses(tmp_path)
    node = start_anvil(state_path=state_path)  # the copy: the chain as this start found it
    try:
        web3 = Web3(Web3.HTTPProvider(node.rpc_url))
        head_at_start = web3.eth.block_number
        web3.provider.make_request(RPCEndpoint("anvil_mine"), ["0x5"])
    finally:
        node.stop()
    whole = state_path.read_bytes()
    state_path.write_bytes(whole[: len(whole) // 2])  # anvil killed while it rewrote its dump

    node = start_anvil(state_path=state_path)
    try:
        web3 = Web3(Web3.HTTPProvider(node.rpc_url))
        assert web3.eth.get_block(0)["hash"].to_0x_hex() == genesis
        assert web3.eth.block_number == head_at_start  # back as it was at the last start: rewound
    finally:
        node.stop()
    set_aside = list(tmp_path.glob("chain.json.broken-*"))
    assert [path.read_bytes() for path in set_aside] == [whole[: len(whole) // 2]]  # kept for a look


def test_a_half_written_state_file_with_no_copy_is_anvils_to_report(tmp_path: Path) -> None:
    state_path, _ = _chain_with_two_geneses(tmp_path)
    last_start_copy(state_path).unlink()
    state_path.write_bytes(state_path.read_bytes()[:100])
    with pytest.raises(AnvilError, match="anvil exited"):
        start_anvil(state_path=state_path)


def test_a_new_chain_removes_an_old_chains_copy(tmp_path: Path) -> None:
    state_path, _ = _chain_with_two_geneses(tmp_path)
    assert last_start_copy(state_path).exists()
    state_path.unlink()  # the chain reset: its state removed
    prepare_state_file(state_path)
    assert not last_start_copy(state_path).exists()


def test_a_chain_that_comes_back_without_its_genesis_is_refused_and_stopped(tmp_path: Path) -> None:
    state_path, genesis = _chain_with_two_geneses(tmp_path)
    _rewrite_geneses(state_path, [max(_geneses(state_path), key=_timestamp)])  # only the later one left

    with pytest.raises(AnvilError, match="block 1 descends from " + genesis) as refused:
        start_anvil(state_path=state_path)
    assert "the state file's chain was not restored" in str(refused.value)
