// Every test file: a fake server behind fetch (installed before the API client captures fetch), a
// clean DOM, no cookies and the page back at /.
import "@testing-library/jest-dom/vitest";
import { cleanup } from "@testing-library/react";
import { afterEach } from "vitest";
import { fakeServer } from "./server";

globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) => fakeServer.handle(input, init);

afterEach(() => {
  cleanup();
  fakeServer.reset();
  document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT; path=/";
  window.history.replaceState(null, "", "/");
});
