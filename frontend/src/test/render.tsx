// Renders the whole portal at a path, as a browser would open it.
import { render } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { App } from "../App";

export function openAt(path: string) {
  window.history.replaceState(null, "", path);
  const user = userEvent.setup();
  return { user, ...render(<App />) };
}
