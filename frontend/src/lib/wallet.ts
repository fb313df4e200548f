// The user's own browser wallet (EIP-1193: MetaMask and compatible), through viem: connect, sign a
// Sign-In with Ethereum message (personal_sign), and sign with eth_signTypedData_v4 the exact EIP-712
// payload the API prepared. The portal never builds typed data itself: the payload goes to the wallet
// as the server sent it, and back to the server with its signature. Every failure becomes a
// WalletError whose message says, in words, what happened; a cancelled prompt (EIP-1193 code 4001) is
// "rejected", so pages can say that nothing was signed and nothing is pending.
import { createWalletClient, custom, getAddress, isAddressEqual, type Address, type EIP1193Provider, type Hex } from "viem";

export type WalletProblem = "no-wallet" | "rejected" | "wrong-account" | "wrong-chain" | "failed";

export class WalletError extends Error {
  readonly problem: WalletProblem;

  constructor(problem: WalletProblem, message: string) {
    super(message);
    this.name = "WalletError";
    this.problem = problem;
  }
}

/** An EIP-712 payload as POST /api/consents/typed-data (or an access request's) answers it. */
export type TypedPayload = {
  domain: { chainId?: number | string; [key: string]: unknown };
  types: Record<string, unknown>;
  primaryType: string;
  message: Record<string, unknown>;
};

export const USER_REJECTED = 4001;

/** Did the user cancel the wallet's prompt? viem wraps the provider's error: look down the causes. */
export function isUserRejection(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; current && depth < 8; depth += 1) {
    const value = current as { code?: unknown; name?: unknown; cause?: unknown };
    if (value.code === USER_REJECTED || value.name === "UserRejectedRequestError") return true;
    current = value.cause;
  }
  return false;
}

function failure(error: unknown): WalletError {
  if (error instanceof WalletError) return error;
  if (isUserRejection(error)) return new WalletError("rejected", "You cancelled the request in your wallet.");
  const detail = (error as { shortMessage?: unknown; message?: unknown }) ?? {};
  const words = typeof detail.shortMessage === "string" ? detail.shortMessage : String(detail.message ?? error);
  return new WalletError("failed", `Your wallet could not do it: ${words}`);
}

/** The page's EIP-1193 provider (window.ethereum), or null when this browser has no wallet. */
export function findProvider(): EIP1193Provider | null {
  const provider = (window as { ethereum?: EIP1193Provider }).ethereum;
  return provider && typeof provider.request === "function" ? provider : null;
}

export type Wallet = {
  address: Address;
  chainId: number;
  signMessage: (message: string) => Promise<Hex>;
  signTypedPayload: (payload: TypedPayload) => Promise<Hex>;
};

/** Ask the wallet for its account (the wallet may prompt); the first account is the one that signs. */
export async function connectWallet(provider: EIP1193Provider | null = findProvider()): Promise<Wallet> {
  if (!provider) {
    throw new WalletError(
      "no-wallet",
      "No wallet was found in this browser. Install MetaMask or a compatible wallet, or sign in with a username and password.",
    );
  }
  // A prompt is never re-sent by itself: a retry would show the user a second prompt.
  const client = createWalletClient({ transport: custom(provider, { retryCount: 0 }) });
  try {
    const [first] = await client.requestAddresses();
    if (!first) throw new WalletError("failed", "Your wallet gave no account. Unlock it, then try again.");
    const address = getAddress(first);
    const chainId = await client.getChainId();
    return {
      address,
      chainId,
      signMessage: async (message) => {
        try {
          return await client.signMessage({ account: address, message });
        } catch (error) {
          throw failure(error);
        }
      },
      signTypedPayload: async (payload) => {
        try {
          await switchToChainOf(payload, chainId, provider);
          return await client.request({ method: "eth_signTypedData_v4", params: [address, JSON.stringify(payload)] });
        } catch (error) {
          throw failure(error);
        }
      },
    };
  } catch (error) {
    throw failure(error);
  }
}

/** Wallets refuse typed data for another chain than theirs: ask to switch, or say which chain to pick. */
async function switchToChainOf(payload: TypedPayload, walletChain: number, provider: EIP1193Provider): Promise<void> {
  const wanted = Number(payload.domain.chainId);
  if (!Number.isFinite(wanted) || wanted === walletChain) return;
  try {
    await provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId: `0x${wanted.toString(16)}` }] });
  } catch (error) {
    if (isUserRejection(error)) throw error;
    throw new WalletError(
      "wrong-chain",
      `Your wallet is on chain ${walletChain}, HealthHash's consents are on chain ${wanted}. Switch your wallet to chain ${wanted}, then try again.`,
    );
  }
}

/** Sign `payload` with the wallet whose account is `expected` (the signed-in user's address). */
export async function signTypedPayload(payload: TypedPayload, expected: string, provider?: EIP1193Provider | null): Promise<Hex> {
  const wallet = await connectWallet(provider === undefined ? findProvider() : provider);
  if (!isAddressEqual(wallet.address, getAddress(expected))) {
    throw new WalletError(
      "wrong-account",
      `Your wallet's account is ${wallet.address}, but you are signed in as ${getAddress(expected)}. Choose that account in your wallet, then try again.`,
    );
  }
  return wallet.signTypedPayload(payload);
}
