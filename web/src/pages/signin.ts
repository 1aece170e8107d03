// Sign-in: an API token's secret for a session cookie. The token is sent once and not kept.
import { ApiError, call, Session } from "../api";
import { h, fill } from "../dom";

export function signInPage(app: HTMLElement, signedIn: (session: Session) => void): () => void {
  const token = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true,
    "aria-describedby": "token-help token-error", spellcheck: "false" });
  const error = h("p", { id: "token-error", class: "field-error form-error", role: "alert" });
  const button = h("button", { type: "submit" }, "Sign in");
  // The script takes every submit (below, before the form is shown); were the browser ever to
  // submit it itself, a POST keeps the token in the body, out of the address, history and logs
  // (a form's default GET would send it as /?token=...).
  const form = h("form", { class: "card signin", method: "post", "aria-labelledby": "signin-title" },
    h("h1", { id: "signin-title" }, "Sign in to Corral"),
    h("label", { for: "token" }, "API token"),
    token,
    h("p", { id: "token-help", class: "help" }, "A token made on the host with ",
      h("code", {}, "corral token create NAME"), ", or open the one-time link ", h("code", {}, "tools/quickstart"),
      " printed."),
    error,
    button);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    token.removeAttribute("aria-invalid");
    button.disabled = true;
    try {
      signedIn(await call<Session>("POST", "/api/v1/session", { token: token.value.trim() }));
    } catch (failure) {
      error.textContent = failure instanceof ApiError ? failure.message : String(failure);
      token.setAttribute("aria-invalid", "true");
      token.focus();
    } finally {
      button.disabled = false;
    }
  });
  fill(app, h("main", { id: "page", class: "center" }, form));
  token.focus();
  return () => {};
}
