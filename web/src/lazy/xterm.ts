// A chunk of its own (web/build.mjs splits at import()): xterm.js, its fit add-on and its CSS, which
// only the serial console needs (console.ts loads it when a VM page opens). The CSS comes as text
// (the chunk's own, not the page's stylesheet) and lazy.ts adds it to the page once.
import css from "@xterm/xterm/css/xterm.css" with { type: "text" };

export { Terminal } from "@xterm/xterm";
export { FitAddon } from "@xterm/addon-fit";
export { css };
