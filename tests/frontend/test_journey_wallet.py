"""Journeys 4 and 6 of the web portal: wallet users, in Debian's chromium against the real server, chain,
relayer and indexer. No MetaMask: the page gets an EIP-1193 provider (`window.ethereum`) injected before
its scripts run, whose every request is answered in Python — accounts and chain id, `personal_sign` and
`eth_signTypedData_v4` signed with eth_account and a fresh test key — and which can answer a prompt the
way a user who cancels it does (EIP-1193 error 4001).

Journey 4: a wallet user signs in with Ethereum and grants a doctor access by signing the exact payload
the API prepared; the consent is pending, then active once mined; then revokes it the same way (the
Revoke the API prepared, signed in the wallet), pending, then revoked once mined. Journey 6: the user
cancels the wallet's prompt (at sign-in and at the grant): nothing is left pending, and the page says so
in words.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from playwright.sync_api import Browser, BrowserContext, Page, expect
from pytest_django.fixtures import Settings as SettingsWrapper

from access.models import Consent, KeyKind, Role, User
from contracts.drain import drain_outbox
from healthhash.sealing import new_kek_entry
from tests.conftest import Personas, address_of
from tests.frontend.test_portal_journeys import heading, shoot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

USER_REJECTED = 4001
# The provider a wallet extension would inject; each request goes to the Python wallet below.
PROVIDER_SCRIPT = """
(() => {
  const listeners = {};
  window.ethereum = {
    isHealthHashInjectedWallet: true,
    async request({ method, params }) {
      const answer = await window.__testWallet(method, params === undefined ? [] : params);
      if (answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        throw error;
      }
      return answer.result;
    },
    on(event, listener) { (listeners[event] = listeners[event] || []).push(listener); },
    removeListener(event, listener) {
      listeners[event] = (listeners[event] || []).filter((known) => known !== listener);
    },
  };
})();
"""


@dataclass
class InjectedWallet:
    """An EIP-1193 wallet holding one key; `cancel` names the methods whose prompt the user cancels."""

    account: LocalAccount
    chain_id: int
    cancel: set[str] = field(default_factory=set)
    requests: list[tuple[str, list[Any]]] = field(default_factory=list)

    def __call__(self, method: str, params: list[Any]) -> dict[str, Any]:
        self.requests.append((method, params))
        if method in self.cancel:
            return {"error": {"code": USER_REJECTED, "message": "User rejected the request."}}
        if method in ("eth_requestAccounts", "eth_accounts"):
            return {"result": [self.account.address]}
        if method == "eth_chainId":
            return {"result": hex(self.chain_id)}
        if method == "personal_sign":
            data, address = params
            assert address.lower() == self.account.address.lower()
            signed = self.account.sign_message(encode_defunct(hexstr=data))
            return {"result": "0x" + bytes(signed.signature).hex()}
        if method == "eth_signTypedData_v4":
            address, payload = params
            assert address.lower() == self.account.address.lower()
            signed = self.account.sign_typed_data(full_message=json.loads(payload))
            return {"result": "0x" + bytes(signed.signature).hex()}
        return {"error": {"code": 4200, "message": f"the test wallet does not do {method}"}}

    def signed(self, method: str) -> list[list[Any]]:
        return [params for name, params in self.requests if name == method]


@pytest.fixture(autouse=True)
def _portal_settings(settings: SettingsWrapper, live_server: Any) -> None:
    settings.KEY_ENCRYPTION_KEYS = new_kek_entry("kek-portal")
    settings.SIWE_DOMAIN = urlsplit(live_server.url).netloc  # the site the browser is on
    expect.set_options(timeout=20_000)


def wallet_context(chromium: Browser, base_url: str, wallet: InjectedWallet) -> BrowserContext:
    context = chromium.new_context(base_url=base_url, viewport={"width": 1280, "height": 800})
    context.expose_function("__testWallet", wallet)
    context.add_init_script(PROVIDER_SCRIPT)
    return context


def sign_in_with_ethereum(page: Page) -> None:
    heading(page, "Sign in").to_be_visible()
    button = page.get_by_role("button", name="Sign in with Ethereum")
    button.focus()
    page.keyboard.press("Enter")


def review_grant_to(page: Page, doctor_address: str) -> dict[str, Any]:
    """Fill the grant form for the whole chart; returns the payload the API prepared for signing."""
    page.get_by_role("link", name="My consents").click()
    heading(page, "My consents").to_be_visible()
    page.get_by_role("link", name="Grant access").click()
    heading(page, "Grant access").to_be_visible()
    page.get_by_label("Who gets access", exact=True).select_option(value=doctor_address)
    expect(page.get_by_label("My whole chart")).to_be_checked()
    with page.expect_response(re.compile(r"/api/consents/typed-data$")) as prepared:
        page.get_by_role("button", name="Review").click()
    heading(page, "Check and sign").to_be_visible()
    sentence = page.get_by_test_id("grant-sentence")
    expect(sentence).to_contain_text("bob (General Hospital) may see your whole chart")
    expect(page.get_by_role("heading", name="What your wallet will sign")).to_be_visible()
    expect(page.get_by_label("Your password, to sign")).to_have_count(0)  # wallet users never type one
    payload: dict[str, Any] = prepared.value.json()
    return payload


def review_revoke(page: Page) -> dict[str, Any]:
    """Open the revoke panel of bob's consent; returns the Revoke the API prepared for signing."""
    page.get_by_role("link", name="My consents", exact=True).click()
    heading(page, "My consents").to_be_visible()
    with page.expect_response(re.compile(r"/api/consents/[0-9a-f-]+/revoke/typed-data$")) as prepared:
        page.get_by_role("button", name=re.compile(r"^Revoke bob's access")).click()
    panel = page.get_by_role("form", name="Revoke bob's access")
    expect(panel).to_contain_text("bob will no longer see your whole chart")
    expect(panel.get_by_label("Your password, to sign")).to_have_count(0)
    payload: dict[str, Any] = prepared.value.json()
    assert payload["primaryType"] == "Revoke"
    return payload


def test_wallet_user_signs_in_with_ethereum_grants_and_revokes_access_by_signature(
    personas: Personas, live_server: Any, chromium: Browser
) -> None:
    bob_address = address_of(personas.bob)
    wallet = InjectedWallet(Account.create(), personas.chain.chain_id)
    context = wallet_context(chromium, live_server.url, wallet)
    try:
        page = context.new_page()
        page.goto("/consents")
        sign_in_with_ethereum(page)
        heading(page, "My consents").to_be_visible()  # signed in, and back where she was going
        expect(page).to_have_url(re.compile(r"/consents$"))
        [(message_hex, _)] = wallet.signed("personal_sign")
        message = bytes.fromhex(message_hex[2:]).decode()
        domain = urlsplit(live_server.url).netloc
        intro = f"{domain} wants you to sign in with your Ethereum account:\n{wallet.account.address}\n"
        assert message.startswith(intro)
        user = User.objects.get(eth_address=wallet.account.address)
        assert user.role == Role.PATIENT and user.key_kind == KeyKind.WALLET  # signed up by SIWE

        payload = review_grant_to(page, bob_address)
        shoot(page, "wallet-grant-review")
        page.get_by_role("button", name="Sign in my wallet and grant").click()
        heading(page, "Granting access…").to_be_visible()
        expect(page.get_by_text("Pending: queued for the chain")).to_be_visible()
        [(signer, signed_json)] = wallet.signed("eth_signTypedData_v4")
        assert signer == wallet.account.address and json.loads(signed_json) == payload  # exactly as prepared
        consent = Consent.objects.get(patient_address=wallet.account.address)
        assert consent.status == "pending" and consent.grantee_address == bob_address

        drain_outbox()  # what the relayer and indexer workers do
        consent.refresh_from_db()
        assert consent.status == "active" and consent.scope == "chart"
        heading(page, "Access granted").to_be_visible()
        expect(page.get_by_text(f"Granted in block {consent.granted_block}")).to_be_visible()
        shoot(page, "wallet-grant-active")

        revoke_payload = review_revoke(page)
        page.get_by_role("button", name="Sign in wallet and revoke").click()
        expect(page.get_by_text("Revoking bob's access: waiting for the chain…")).to_be_visible()
        [_, (signer, signed_json)] = wallet.signed("eth_signTypedData_v4")
        assert signer == wallet.account.address and json.loads(signed_json) == revoke_payload
        consent.refresh_from_db()
        assert consent.revocation_pending

        drain_outbox()
        consent.refresh_from_db()
        assert consent.status == "revoked"
        expect(page.get_by_text(f"bob's access is revoked (block {consent.ended_block}).")).to_be_visible()
        shoot(page, "wallet-revoked")
    finally:
        context.close()


def test_cancelled_wallet_prompt_leaves_nothing_pending_and_says_so(
    personas: Personas, live_server: Any, chromium: Browser
) -> None:
    wallet = InjectedWallet(Account.create(), personas.chain.chain_id, cancel={"personal_sign"})
    context = wallet_context(chromium, live_server.url, wallet)
    try:
        page = context.new_page()
        page.goto("/")
        sign_in_with_ethereum(page)
        expect(page.get_by_role("alert")).to_have_text(
            "You cancelled the sign-in in your wallet: nothing was signed and you are not signed in."
        )
        assert not User.objects.filter(eth_address=wallet.account.address).exists()
        wallet.cancel.clear()
        sign_in_with_ethereum(page)
        heading(page, "My records").to_be_visible()

        review_grant_to(page, address_of(personas.bob))
        wallet.cancel.add("eth_signTypedData_v4")
        page.get_by_role("button", name="Sign in my wallet and grant").click()
        expect(page.get_by_test_id("wallet-problem")).to_have_text(
            "You cancelled the signature in your wallet. "
            "Nothing was signed, so nothing was sent and nothing is pending."
        )
        shoot(page, "wallet-grant-cancelled")
        heading(page, "Check and sign").to_be_visible()  # still here, to sign again or change the terms
        assert not Consent.objects.filter(patient_address=wallet.account.address).exists()
        answer = page.request.get("/api/consents")  # what the API says, with the user's own session
        assert answer.ok and answer.json()["count"] == 0
        page.get_by_role("link", name="My consents").click()
        expect(page.get_by_text("You have not granted anyone access yet.")).to_be_visible()
    finally:
        context.close()
