// Keys for the graphical console: the send-keys combinations (keys a browser or the desktop
// around it would take for itself) and text as key strokes for paste-as-typing.
// A key is an X keysym (what RFB's KeyEvent carries) with the KeyboardEvent.code of its place on
// a US keyboard: noVNC sends QEMU's extended key event with that key's scancode when the server
// offers it, so the guest gets the key whatever layout the server assumes.

export interface Key {
  keysym: number;
  code: string | null;
}

const key = (keysym: number, code: string): Key => ({ keysym, code });
const control = key(0xffe3, "ControlLeft");
const alt = key(0xffe9, "AltLeft");
const shift = key(0xffe1, "ShiftLeft");
const fn = (n: number) => key(0xffbe + n - 1, `F${n}`); // XK_F1 is 0xffbe, the others follow it
const letter = (c: string) => key(c.charCodeAt(0), `Key${c.toUpperCase()}`);

/** A combination: its keys are pressed in order and let go in reverse. */
export interface Combo {
  label: string;
  keys: Key[];
}

export const combos: Combo[] = [
  { label: "Ctrl-Alt-Del", keys: [control, alt, key(0xffff, "Delete")] },
  { label: "Ctrl-Alt-Backspace", keys: [control, alt, key(0xff08, "Backspace")] },
  ...[1, 2, 3, 4, 5, 6, 7].map((n) => ({ label: `Ctrl-Alt-F${n}`, keys: [control, alt, fn(n)] })),
  { label: "Ctrl-C", keys: [control, letter("c")] },
  { label: "Ctrl-D", keys: [control, letter("d")] },
  { label: "Ctrl-Z", keys: [control, letter("z")] },
  { label: "Esc", keys: [key(0xff1b, "Escape")] },
  { label: "Tab", keys: [key(0xff09, "Tab")] },
  { label: "Alt-Tab", keys: [alt, key(0xff09, "Tab")] },
  { label: "Alt-F4", keys: [alt, fn(4)] },
  { label: "Print Screen", keys: [key(0xff61, "PrintScreen")] },
  { label: "Super (Windows key)", keys: [key(0xffeb, "MetaLeft")] },
];

// The US layout's printable keys: each row as typed plainly, with Shift, and the keys' codes.
const rows: [string, string, string[]][] = [
  ["`1234567890-=", "~!@#$%^&*()_+", ["Backquote", ..."1234567890".split("").map((d) => `Digit${d}`), "Minus", "Equal"]],
  ["qwertyuiop[]\\", "QWERTYUIOP{}|", [..."qwertyuiop".split("").map((c) => `Key${c.toUpperCase()}`),
    "BracketLeft", "BracketRight", "Backslash"]],
  ["asdfghjkl;'", "ASDFGHJKL:\"", [..."asdfghjkl".split("").map((c) => `Key${c.toUpperCase()}`), "Semicolon", "Quote"]],
  ["zxcvbnm,./", "ZXCVBNM<>?", [..."zxcvbnm".split("").map((c) => `Key${c.toUpperCase()}`), "Comma", "Period", "Slash"]],
];
const typed = new Map<string, { key: Key; shifted: boolean }>([
  [" ", { key: key(0x20, "Space"), shifted: false }],
  ["\n", { key: key(0xff0d, "Enter"), shifted: false }],
  ["\t", { key: key(0xff09, "Tab"), shifted: false }],
]);
for (const [plain, shifted, codes] of rows) {
  codes.forEach((code, i) => {
    typed.set(plain[i], { key: key(plain.charCodeAt(i), code), shifted: false });
    typed.set(shifted[i], { key: key(shifted.charCodeAt(i), code), shifted: true });
  });
}

/** Key strokes for one character: US-layout keys (with Shift where it takes one); any other
 *  character as its Unicode keysym alone, which the server maps if its keymap has it. */
export function strokes(character: string): Key[] {
  if (character === "\r") return [];
  const known = typed.get(character);
  if (known) return known.shifted ? [shift, known.key] : [known.key];
  const point = character.codePointAt(0) ?? 0x3f;
  // Latin-1 keysyms are the code point; the rest of Unicode is 0x01000000 + the code point.
  return [{ keysym: point <= 0xff ? point : 0x01000000 + point, code: null }];
}
