// Corral's web UI: signs in, then renders the page the address's #/... names. Each page returns
// a cleanup that closes its sockets and timers when another page replaces it.
import "./style.css";
import { ApiError, call, get, Session, useSession, whenSignedOut } from "./api";
import { h, fill } from "./dom";
import { dashboardPage } from "./pages/dashboard";
import { vmsPage } from "./pages/vms";
import { vmPage } from "./pages/vm";
import { createPage } from "./pages/create";
import { storagePage } from "./pages/storage";
import { tasksPage } from "./pages/tasks";
import { signInPage } from "./pages/signin";
import { networksPage } from "./pages/networks";
import { tokensPage } from "./pages/tokens";
import { backupsPage } from "./pages/backups";
import { securityGroupsPage } from "./pages/security_groups";

export type Cleanup = () => void;
export type Page = (main: HTMLElement, params: string[]) => Cleanup | void;

const routes: [RegExp, Page, string][] = [
  [/^#?\/?$/, dashboardPage, "Dashboard"],
  [/^#\/vms$/, vmsPage, "VMs"],
  [/^#\/vms\/new$/, createPage, "New VM"],
  [/^#\/vms\/([^/]+)$/, vmPage, "VMs"],
  [/^#\/storage$/, storagePage, "Storage"],
  [/^#\/tasks$/, tasksPage, "Tasks"],
  [/^#\/networks$/, networksPage, "Networks"],
  [/^#\/backups$/, backupsPage, "Backups"],
  [/^#\/security-groups$/, securityGroupsPage, "Firewall"],
  [/^#\/tokens$/, tokensPage, "Tokens"],
];

const app = document.getElementById("app")!;
let cleanup: Cleanup | void;
let session: Session | undefined;

function render(): void {
  if (cleanup) cleanup();
  cleanup = undefined;
  if (!session) {
    cleanup = signInPage(app, signedIn);
    return;
  }
  const hash = location.hash || "#/";
  const route = routes.find(([pattern]) => pattern.test(hash));
  const main = h("main", { id: "page", tabindex: "-1" });
  const active = route?.[2];
  const links = [["#/", "Dashboard"], ["#/vms", "VMs"], ["#/vms/new", "New VM"], ["#/storage", "Storage"],
    ["#/tasks", "Tasks"], ["#/networks", "Networks"], ["#/security-groups", "Firewall"], ["#/backups", "Backups"], ["#/tokens", "Tokens"]];
  const nav = h("nav", { "aria-label": "Main" },
    h("ul", {}, links.map(([href, label]) =>
      h("li", {}, h("a", { href, "aria-current": label === active ? "page" : false }, label)))));
  const skip = h("a", { class: "skip", href: "#/", onclick: (event: Event) => { event.preventDefault(); main.focus(); } },
    "Skip to content");
  const header = h("header", { class: "top" }, skip, h("a", { class: "brand", href: "#/" }, "Corral"), nav,
    h("div", { class: "who" }, h("span", {}, session.signed_in_as),
      h("button", { type: "button", class: "secondary", onclick: signOut }, "Sign out")));
  fill(app, header, main);
  if (!route) {
    fill(main, h("h1", {}, "Not found"), h("p", {}, "No page at ", h("code", {}, hash), ". ", h("a", { href: "#/" }, "Dashboard")));
    return;
  }
  const match = hash.match(route[0])!;
  cleanup = route[1](main, match.slice(1).map(decodeURIComponent));
  // Keyboard and screen-reader users land on the new page's heading.
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus();
  }
}

function signedIn(next: Session): void {
  session = next;
  useSession(next);
  render();
}

async function signOut(): Promise<void> {
  try {
    await call("DELETE", "/api/v1/session");
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
  }
  session = undefined;
  useSession(undefined);
  render();
}

whenSignedOut(() => {
  if (!session) return;
  session = undefined;
  useSession(undefined);
  render();
});
// A one-time sign-in link (tools/quickstart prints one): #signin=CODE. Redeemed once, then taken
// out of the address bar and history. Returns false when the address holds none.
async function redeemLink(): Promise<boolean> {
  const link = location.hash.match(/^#signin=([A-Za-z0-9_-]+)$/);
  if (!link) return false;
  history.replaceState(null, "", location.pathname);
  try {
    signedIn(await call<Session>("POST", "/api/v1/session", { link: link[1] }));
  } catch (error) {
    session = undefined;
    useSession(undefined);
    render();
    const message = app.querySelector(".form-error");
    if (message && error instanceof ApiError) message.textContent = error.message;
  }
  return true;
}

window.addEventListener("hashchange", () => {
  void redeemLink().then((redeemed) => {
    if (!redeemed) render();
  });
});

async function start(): Promise<void> {
  if (await redeemLink()) return;
  try {
    signedIn(await get<Session>("/api/v1/session"));
  } catch {
    session = undefined;
    render();
  }
}

void start();
