// Sign-In with Ethereum (EIP-4361): the message is written by viem from what GET /api/auth/siwe/nonce
// answers (the site's domain, URI, chain id, a one-use nonce and its lifetime), signed by the wallet
// with personal_sign and checked by POST /api/auth/siwe/verify, which starts the session. An address
// the server does not know signs up as a patient with a wallet key.
import { getAddress } from "viem";
import { createSiweMessage } from "viem/siwe";
import { api, call, ensureCsrfCookie } from "../api/client";
import type { components } from "../api/schema";
import type { Me } from "../api/types";
import { connectWallet, findProvider } from "./wallet";

export type SiweNonce = components["schemas"]["SiweNonceOut"];

// Only EIP-4361's statement characters: letters, digits, spaces and RFC 3986's punctuation.
export const SIWE_STATEMENT = "Sign in to HealthHash. This proves that you hold this account; it sends no transaction and costs nothing.";

/** The EIP-4361 message for `address`, with every value the server asked for. */
export function siweMessage(nonce: SiweNonce, address: string): string {
  return createSiweMessage({
    address: getAddress(address),
    chainId: nonce.chain_id,
    domain: nonce.domain,
    uri: nonce.uri,
    nonce: nonce.nonce,
    version: "1",
    statement: SIWE_STATEMENT,
    issuedAt: new Date(nonce.issued_at),
    expirationTime: new Date(nonce.expires_at),
  });
}

/** Connect the wallet, sign the server's sign-in message, start the session: the signed-in user. */
export async function signInWithEthereum(provider = findProvider()): Promise<Me> {
  const wallet = await connectWallet(provider);
  const nonce = await call(api.GET("/api/auth/siwe/nonce"));
  const message = siweMessage(nonce, wallet.address);
  const signature = await wallet.signMessage(message);
  await ensureCsrfCookie();
  return call(api.POST("/api/auth/siwe/verify", { body: { message, signature } }));
}
