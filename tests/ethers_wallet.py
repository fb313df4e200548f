"""Sign as a browser wallet does: ethers v6 `Wallet.signTypedData` in node (tests/js/sign_typed_data.mjs),
an implementation independent of eth-account, so a payload both accept is really eth_signTypedData_v4."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

SIGNER_SCRIPT = Path(__file__).resolve().parent / "js" / "sign_typed_data.mjs"


def ethers_sign(private_key: bytes, payload: dict[str, Any]) -> bytes:
    """Signs with ethers' Wallet.signTypedData in node (types without EIP712Domain, as wallets take them)."""
    request = json.dumps({"privateKey": "0x" + private_key.hex(), "payload": payload})
    proc = subprocess.run(
        ["node", str(SIGNER_SCRIPT)], input=request, capture_output=True, text=True, timeout=60, check=True
    )
    return bytes.fromhex(json.loads(proc.stdout)["signature"][2:])
