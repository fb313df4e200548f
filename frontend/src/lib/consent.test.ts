import { describe, expect, it } from "vitest";
import { consent } from "../test/fixtures";
import { canRevoke, consentState, grantSentence, reasonInWords, revokeSentence, scopeInWords } from "./consent";

describe("consentState", () => {
  it("says a queued grant is pending and keeps following it", () => {
    const state = consentState(consent({ status: "pending", grant_outbox_status: "pending", grant_tx_hash: "" }));
    expect(state).toMatchObject({ label: "Pending: queued for the chain", tone: "pending", inFlight: true });
  });

  it("says a sent grant waits to be mined", () => {
    expect(consentState(consent({ status: "pending", grant_outbox_status: "sent" })).label).toBe(
      "Pending: sent, waiting to be mined",
    );
  });

  it("says active once mined, and nothing more is followed", () => {
    expect(consentState(consent())).toMatchObject({ label: "Active", tone: "ok", inFlight: false, problem: null });
  });

  it("says revocation pending while a signed revoke is not mined", () => {
    const state = consentState(consent({ revocation_pending: true }));
    expect(state).toMatchObject({ label: "Revocation pending", inFlight: true });
  });

  it("names the chain's reason of a failed grant in words", () => {
    const state = consentState(consent({ status: "failed", failure_reason: "GranteeNotRegistered" }));
    expect(state.label).toBe("Failed");
    expect(state.problem).toBe("The grant failed: the doctor or hospital is not registered as active in the Directory.");
  });

  it("keeps a consent active when its revocation failed, and says why", () => {
    const state = consentState(consent({ revoke_failure_reason: "DeadlineExpired" }));
    expect(state.tone).toBe("bad");
    expect(state.problem).toContain("deadline passed");
  });

  it("shows an unknown reason code as it came", () => {
    expect(reasonInWords("SomethingNew")).toBe("the chain refused it (SomethingNew)");
  });

  it("marks revoked and expired as ended", () => {
    expect(consentState(consent({ status: "revoked" })).label).toBe("Revoked");
    expect(consentState(consent({ status: "expired" })).tone).toBe("ended");
  });

  it("offers revoke only on an active consent not already being revoked", () => {
    expect(canRevoke(consent())).toBe(true);
    expect(canRevoke(consent({ revocation_pending: true }))).toBe(false);
    expect(canRevoke(consent({ status: "pending" }))).toBe(false);
    expect(canRevoke(consent({ status: "revoked" }))).toBe(false);
  });
});

describe("plain words", () => {
  it("says what a grant allows, to whom, why and until when", () => {
    expect(
      grantSentence({ granteeName: "Dr Bob (General Hospital)", scope: "category:laboratory", purpose: "TREATMENT", expiresAt: "2027-01-31T12:00:00Z" }),
    ).toBe("Dr Bob (General Hospital) may see your laboratory results to treat you, until 31 Jan 2027, unless you revoke it sooner.");
  });

  it("says a grant without expiry lasts until revoked", () => {
    expect(grantSentence({ granteeName: "General Hospital", scope: "chart", purpose: "TRAINING", expiresAt: null })).toBe(
      "General Hospital may see your whole chart to train the hospitals' shared model, until you revoke it.",
    );
  });

  it("names one record by its label, or by the start of its id", () => {
    expect(scopeInWords("record:7d1c8f0e-0000", "Observation, 2 Nov 2026")).toBe("one record: Observation, 2 Nov 2026");
    expect(scopeInWords("record:7d1c8f0e-0000")).toBe("one record: no. 7d1c8f0e");
  });

  it("says what a revocation ends", () => {
    expect(revokeSentence(consent())).toMatch(/^Dr Bob will no longer see your whole chart to treat you/);
  });
});
