// Tokens: what this browser signed in with, and how tokens are made and revoked. The tokens
// routes answer only on corrald's unix socket, on purpose (src/daemon/api/token_routes.cpp): a
// token that leaks off the host must not make more tokens or revoke the operator's. So this page
// shows the session (GET /session) and the host commands; it never calls /tokens.
import { get, Session } from "../api";
import { fill, h } from "../dom";

export function tokensPage(main: HTMLElement): () => void {
  const facts = h("dl", { class: "facts session-facts" });
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  fill(main, h("h1", {}, "Tokens"), status, h("div", { class: "grid" },
    h("section", { class: "card", "aria-labelledby": "session-title" }, h("h2", { id: "session-title" }, "This session"), facts,
      h("p", { class: "help" }, "Signing out ends this session at once. Revoking its token ends every session signed in with it.")),
    h("section", { class: "card wide", "aria-labelledby": "manage-title" }, h("h2", { id: "manage-title" }, "Making and revoking tokens"),
      h("p", {}, "Tokens are managed only on the host, over corrald's unix socket: from a browser or over TLS the token routes " +
        "answer 403, so a token that leaks cannot make more tokens or revoke yours. On the host, as root or in corrald's group:"),
      h("pre", { class: "commands" }, h("code", {}, [
        "# make one: its secret is printed this once",
        "corral token create laptop > token && chmod 600 token",
        "# names, when made, when last used (never secrets)",
        "corral token list",
        "# revoke one: refused from the next request on",
        "corral token delete laptop",
        "# a one-time sign-in link for a browser (tools/quickstart prints one)",
        "curl -s --unix-socket /var/lib/corral/corrald.sock \\",
        "     -X POST http://corral/api/v1/session/links",
      ].join("\n"))),
      h("p", { class: "help" }, "A token is a secret like a password: keep its file 0600 and give each client its own, " +
        "so that one can be revoked alone."))));
  void get<Session>("/api/v1/session").then((session) => {
    fill(facts, h("dt", {}, "Signed in as"), h("dd", { class: "signed-in-as" }, session.signed_in_as),
      h("dt", {}, "Expires"), h("dd", {}, h("time", { datetime: session.expires_at }, session.expires_at.replace("T", " ").replace("Z", " UTC"))));
  }).catch((error) => (status.textContent = (error as Error).message));
  return () => {};
}
