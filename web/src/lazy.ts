// Code that only some pages need (xterm.js, uPlot, noVNC) comes in chunks loaded by import() when
// first used, so the sign-in page and the pages without a console or chart do not download it.
// A chunk can fail to load: corrald restarted with a new build serves new hashed names, and the
// page still asks for the old ones (404). The card then says so instead of throwing unseen.
import { h } from "./dom";

/** A chunk that brings its own CSS (as text: see lazy/xterm.ts). */
interface Styled {
  css: string;
}

/**
 * Loads a chunk once for every caller and adds its CSS to the page the first time. A failed load
 * is not kept: the next caller (another page) tries again.
 */
export function lazyChunk<T extends Styled>(load: () => Promise<T>): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => loading ??= load().then((chunk) => {
    document.head.append(h("style", {}, chunk.css));
    return chunk;
  }, (error: unknown) => {
    loading = undefined;
    throw error;
  });
}

/** What a card shows when its code did not load: why, most likely, and the way out (a reload). */
export function chunkFailed(what: string, error: unknown): HTMLElement {
  return h("span", { class: "chunk-failed", role: "alert" },
    `The ${what}'s code did not load (corrald may have been updated since this page was opened): reload the page. `,
    h("button", { type: "button", class: "secondary", onclick: () => location.reload() }, "Reload"),
    h("span", { class: "help" }, ` ${error instanceof Error ? error.message : String(error)}`));
}
