import type { EIP1193Provider } from "viem";
import { describe, expect, it } from "vitest";
import { connectWallet, isUserRejection, signTypedPayload, WalletError, type TypedPayload } from "./wallet";

const ACCOUNT = "0xa11ce00000000000000000000000000000000001";
const SIGNATURE = `0x${"ab".repeat(65)}`;
const PAYLOAD: TypedPayload = {
  types: { EIP712Domain: [{ name: "chainId", type: "uint256" }], Grant: [{ name: "scope", type: "string" }] },
  domain: { name: "HealthHash Consent", version: "1", chainId: 31337, verifyingContract: "0xC0FFEE0000000000000000000000000000000004" },
  primaryType: "Grant",
  message: { scope: "chart", deadline: 1_900_000_000 },
};

type Call = { method: string; params: unknown };

/** An EIP-1193 provider answering from a table; a function answer may throw like a wallet does. */
function fakeProvider(answers: Record<string, unknown>, calls: Call[] = []): EIP1193Provider {
  const request = async ({ method, params }: { method: string; params?: unknown }) => {
    calls.push({ method, params });
    const answer = answers[method];
    if (typeof answer === "function") return (answer as (p: unknown) => unknown)(params);
    if (answer === undefined) throw Object.assign(new Error(`no ${method}`), { code: 4200 });
    return answer;
  };
  return { request, on: () => undefined, removeListener: () => undefined } as unknown as EIP1193Provider;
}

function rejected(): never {
  throw Object.assign(new Error("User rejected the request."), { code: 4001 });
}

const WALLET = { eth_requestAccounts: [ACCOUNT], eth_chainId: "0x7a69", eth_signTypedData_v4: SIGNATURE };

describe("signing the API's payload", () => {
  it("sends the exact payload, as JSON, with eth_signTypedData_v4 from the signed-in account", async () => {
    const calls: Call[] = [];
    const signature = await signTypedPayload(PAYLOAD, ACCOUNT.toUpperCase().replace("0X", "0x"), fakeProvider(WALLET, calls));
    expect(signature).toBe(SIGNATURE);
    const signing = calls.find((c) => c.method === "eth_signTypedData_v4");
    const [address, json] = signing?.params as [string, string];
    expect(address.toLowerCase()).toBe(ACCOUNT);
    expect(JSON.parse(json)).toEqual(PAYLOAD);
  });

  it("says the user cancelled when the wallet answers 4001", async () => {
    const provider = fakeProvider({ ...WALLET, eth_signTypedData_v4: rejected });
    const failure = await signTypedPayload(PAYLOAD, ACCOUNT, provider).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(WalletError);
    expect((failure as WalletError).problem).toBe("rejected");
  });

  it("refuses to sign with another account than the signed-in one", async () => {
    const calls: Call[] = [];
    const failure = await signTypedPayload(PAYLOAD, "0xB0B0000000000000000000000000000000000002", fakeProvider(WALLET, calls)).catch((e: unknown) => e);
    expect((failure as WalletError).problem).toBe("wrong-account");
    expect((failure as WalletError).message.toLowerCase()).toContain("signed in as 0xb0b0000000000000000000000000000000000002");
    expect(calls.map((c) => c.method)).not.toContain("eth_signTypedData_v4");
  });

  it("asks the wallet to switch to the payload's chain, and says which chain when it cannot", async () => {
    const calls: Call[] = [];
    const switched = fakeProvider({ ...WALLET, eth_chainId: "0x1", wallet_switchEthereumChain: null }, calls);
    await expect(signTypedPayload(PAYLOAD, ACCOUNT, switched)).resolves.toBe(SIGNATURE);
    expect(calls.find((c) => c.method === "wallet_switchEthereumChain")?.params).toEqual([{ chainId: "0x7a69" }]);

    const stuck = fakeProvider({ ...WALLET, eth_chainId: "0x1" });
    const failure = await signTypedPayload(PAYLOAD, ACCOUNT, stuck).catch((e: unknown) => e);
    expect((failure as WalletError).problem).toBe("wrong-chain");
    expect((failure as WalletError).message).toContain("chain 31337");
  });

  it("says so when the browser has no wallet", async () => {
    const failure = await connectWallet(null).catch((e: unknown) => e);
    expect((failure as WalletError).problem).toBe("no-wallet");
  });
});

describe("isUserRejection", () => {
  it("finds code 4001 down a chain of causes, and nothing else", () => {
    expect(isUserRejection({ code: 4001 })).toBe(true);
    expect(isUserRejection(new Error("outer", { cause: new Error("middle", { cause: { code: 4001 } }) }))).toBe(true);
    expect(isUserRejection({ code: -32603 })).toBe(false);
    expect(isUserRejection(null)).toBe(false);
  });
});
