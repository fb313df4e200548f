"""Starts and stops a local anvil chain (the npm @foundry-rs/anvil binary) for the demo and the tests.

anvil listens on 127.0.0.1 only, logs to a file, and with a state path keeps its chain across restarts.
Before a start from a state file, `prepare_state_file` leaves one genesis block in it and keeps a copy to
start from should anvil leave the file half-written (see there); after the start, the chain's block 1 must
name its genesis as parent: a chain that came back with another genesis block is one the deployment
refuses for good (`contracts/chain_identity.py`), so it is refused at once.
Its accounts are the standard anvil test mnemonic's: fine for development, never for real value.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

NODE_MODULES = Path(__file__).resolve().parent / "node_modules"
ANVIL_WRAPPER = NODE_MODULES / ".bin" / "anvil"
ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_ACCOUNT_COUNT = 10

log = logging.getLogger(__name__)


class AnvilError(RuntimeError):
    """anvil did not start or answer in time (the message points at its log)."""


@dataclass
class AnvilNode:
    """A running anvil process; `stop()` ends it and waits, which also lets it dump its --state file."""

    rpc_url: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    state_path: Path | None = None
    chain_id: int = 31337
    _log_file: object = field(default=None, repr=False)
    _temporary_log: bool = field(default=False, repr=False)

    def stop(self, timeout: float = 10.0) -> None:
        """Sends SIGTERM to anvil's own process group (anvil, or the npm wrapper and anvil), then waits.

        A log in a temporary file is removed when this stop ends a node that was still running; a node
        that had died on its own keeps its log for whoever looks into why."""
        was_running = self.process.poll() is None
        if was_running:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None
        if self._temporary_log and was_running:
            self.log_path.unlink(missing_ok=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_rpc(url: str, timeout: float = 30.0) -> int:
    """Polls `eth_chainId` at `url` until it answers; returns the chain id or raises AnvilError."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an HTTP JSON-RPC url: {url}")
    payload = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url, data=payload, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - scheme checked above
                return int(json.loads(response.read())["result"], 16)
        except (urllib.error.URLError, ConnectionError, OSError, KeyError, ValueError) as exc:
            last_error = exc
            time.sleep(0.05)
    raise AnvilError(f"no answer from {url} within {timeout}s: {last_error}")


def anvil_binary() -> Path:
    """The npm package's native anvil binary, else its node wrapper (contracts/node_modules/.bin/anvil).

    The native binary is preferred because the wrapper re-raises SIGTERM on itself right after forwarding it,
    without waiting: waiting on the wrapper would not wait for anvil's state dump, and anvil is orphaned.
    """
    for candidate in sorted(NODE_MODULES.glob("@foundry-rs/anvil-*/bin/anvil")):
        if os.access(candidate, os.X_OK):
            return candidate
    return ANVIL_WRAPPER


def _block_number(block: object) -> int | None:
    try:
        return int(block["header"]["number"], 16)  # type: ignore[index]
    except (TypeError, KeyError, ValueError):
        return None


def _block_timestamp(block: dict[str, dict[str, str]]) -> int:
    return int(block["header"]["timestamp"], 16)


@dataclass(frozen=True)
class StatePrepared:
    """What `prepare_state_file` did: genesis blocks removed, and the file it set aside (None: none)."""

    geneses_removed: int = 0
    set_aside: Path | None = None


def last_start_copy(state_path: Path) -> Path:
    return state_path.with_name(state_path.name + ".last-start")


def _write_whole(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replaces `path` by `data` whole (a temporary file, fsync, rename): a crash leaves old or new."""
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def _geneses(state: object) -> list[dict[str, dict[str, str]]] | None:
    """The blocks numbered 0 in anvil's parsed state, or None if it is not anvil's state."""
    blocks = state.get("blocks") if isinstance(state, dict) else None
    if not isinstance(blocks, list):
        return None
    return [block for block in blocks if _block_number(block) == 0]


def _keep_first_genesis(state: dict[str, list[object]]) -> int:
    """Drops from anvil's parsed state every genesis block but the chain's own; returns how many.

    anvil (1.7.1) builds a genesis block at each start, stamped with that moment, before it loads the state
    file; the block stays in its block store beside the loaded genesis, and the next dump writes both. When
    it loads a file with several blocks numbered 0, the one written last becomes block 0: with the blocks
    in hash-map order, a chain restarted from its dump came back with another genesis hash now and then
    (defect B in the README's "Under load"). The chain's own genesis is the earliest: every other one was
    built at a later start."""
    geneses = _geneses(state) or []
    try:
        first = min(geneses, key=_block_timestamp) if len(geneses) > 1 else None
    except (TypeError, KeyError, ValueError):
        return 0
    if first is None:
        return 0
    state["blocks"] = [block for block in state["blocks"] if block is first or _block_number(block) != 0]
    return len(geneses) - 1


def prepare_state_file(state_path: Path) -> StatePrepared:
    """Readies anvil's state file for a start from it, and keeps a copy of what it starts from.

    - Only the chain's own genesis block is left in it (`_keep_first_genesis`).
    - anvil writes its periodic dump in place (one file, rewritten), so a crash while it writes leaves half
      a file, which anvil refuses to start from: the whole chain would be lost. Each start here keeps the
      file it starts from as `<file>.last-start`; a file that is not JSON is set aside
      (`<file>.broken-<time>`) and that copy is started from instead. The chain then comes back as it was
      at that start, rewound: the indexer's re-org check and the relayer's re-sends make up what the lost
      blocks held, as after any rewind (the database holds every signed transaction it relayed).
    With no file (a new chain), an old chain's copy is removed. A file that parses but is not anvil's state
    is left for anvil to report."""
    copy = last_start_copy(state_path)
    if not state_path.exists():
        copy.unlink(missing_ok=True)  # a new chain: an old chain's copy must never stand in for its file
        return StatePrepared()
    set_aside = None
    data = state_path.read_bytes()
    try:
        state = json.loads(data)
    except ValueError:
        try:
            data = copy.read_bytes()
            state = json.loads(data)
        except (OSError, ValueError):
            return StatePrepared()  # no copy to start from: anvil says what is wrong with the file
        set_aside = state_path.with_name(f"{state_path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        os.replace(state_path, set_aside)
        _write_whole(state_path, data)
        log.warning(
            "anvil's state file %s did not parse (set aside as %s); starting from %s",
            state_path,
            set_aside.name,
            copy.name,
        )
    if _geneses(state) is None:
        return StatePrepared(set_aside=set_aside)  # not anvil's state: anvil says so, and no copy of it
    removed = _keep_first_genesis(state)
    if removed:
        data = json.dumps(state).encode()
        _write_whole(state_path, data)
    _write_whole(copy, data)
    return StatePrepared(geneses_removed=removed, set_aside=set_aside)


def _anvil_command(port: int, chain_id: int, block_time: float | None, state_path: Path | None) -> list[str]:
    command = [
        str(anvil_binary()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--chain-id",
        str(chain_id),
        "--mnemonic",
        ANVIL_MNEMONIC,
        "--accounts",
        str(ANVIL_ACCOUNT_COUNT),
    ]
    if block_time is not None:
        command += ["--block-time", str(block_time)]
    if state_path is not None:
        # --state loads at start and dumps at exit; the interval dump bounds the loss after a crash.
        command += ["--state", str(state_path), "--state-interval", "5"]
    return command


def start_anvil(
    *,
    port: int | None = None,
    state_path: Path | None = None,
    chain_id: int = 31337,
    block_time: float | None = None,
    log_path: Path | None = None,
    timeout: float = 30.0,
) -> AnvilNode:
    """Starts anvil on 127.0.0.1 (a free port when `port` is None) and returns once eth_chainId answers.

    The log goes to `log_path`, else next to `state_path`, else to a temporary file.
    """
    chosen_port = port if port is not None else free_port()
    temporary_log = log_path is None and state_path is None
    if log_path is None:
        if state_path is not None:
            log_path = state_path.with_name(state_path.name + ".log")
        else:
            log_path = Path(tempfile.mkstemp(prefix="anvil-", suffix=".log")[1])
    if state_path is not None:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        prepare_state_file(state_path)
    log_file = open(log_path, "ab")
    process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        _anvil_command(chosen_port, chain_id, block_time, state_path),
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: stop() also reaches anvil behind the npm wrapper
    )
    node = AnvilNode(
        rpc_url=f"http://127.0.0.1:{chosen_port}",
        port=chosen_port,
        process=process,
        log_path=log_path,
        state_path=state_path,
        chain_id=chain_id,
        _log_file=log_file,
    )
    try:
        _wait_until_up(node, timeout)
        _check_genesis(node)
    except BaseException:
        # Also on SystemExit / KeyboardInterrupt (a SIGTERM or Ctrl-C while it boots): no orphan anvil.
        node.stop()  # the error names the log: it stays
        raise
    node._temporary_log = temporary_log
    return node


def _wait_until_up(node: AnvilNode, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            raise AnvilError(f"anvil exited with {node.process.returncode}; see {node.log_path}")
        try:
            wait_for_rpc(node.rpc_url, timeout=0.5)
            return
        except AnvilError:
            continue
    raise AnvilError(f"anvil did not answer on {node.rpc_url} within {timeout}s; see {node.log_path}")


def _rpc(url: str, method: str, params: list[object]) -> object:
    payload = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(  # noqa: S310 - our own node's http URL
        url, data=payload, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - our own node's http URL
        return json.loads(response.read()).get("result")


def _check_genesis(node: AnvilNode) -> None:
    """A chain started from a state file must have kept its genesis block: block 1's parent."""
    if node.state_path is None:
        return
    genesis = _rpc(node.rpc_url, "eth_getBlockByNumber", ["0x0", False])
    first = _rpc(node.rpc_url, "eth_getBlockByNumber", ["0x1", False])
    if not (isinstance(genesis, dict) and isinstance(first, dict)):
        return  # a chain with no block 1 yet has nothing to descend from its genesis
    if first.get("parentHash") != genesis.get("hash"):
        raise AnvilError(
            f"anvil came back from {node.state_path} with the genesis block {genesis.get('hash')}, but its "
            f"block 1 descends from {first.get('parentHash')}: the state file's chain was not restored. "
            f"See {node.log_path}."
        )


def anvil_private_keys(count: int = ANVIL_ACCOUNT_COUNT) -> list[str]:
    """Hex private keys of the funded anvil accounts (standard test mnemonic, m/44'/60'/0'/0/i)."""
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    return [
        Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}").key.hex()
        for index in range(count)
    ]
