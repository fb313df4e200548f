// Signs an eth_signTypedData_v4 payload the way a browser wallet does, with ethers v6, as an independent
// check of contracts/typed_data.py. stdin: {"privateKey": "0x..", "payload": {types, domain, primaryType,
// message}}; stdout: {"signature": "0x..", "signer": "0x.."}.
import { readFileSync } from "node:fs";
import { Wallet } from "ethers";

const { privateKey, payload } = JSON.parse(readFileSync(0, "utf8"));
// ethers derives EIP712Domain from `domain` itself and rejects it among the types, as wallets' libraries do.
const { EIP712Domain, ...types } = payload.types;
const wallet = new Wallet(privateKey);
const signature = await wallet.signTypedData(payload.domain, types, payload.message);
process.stdout.write(JSON.stringify({ signature, signer: wallet.address }) + "\n");
